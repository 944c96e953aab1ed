//! Every token format runs the testkit's format suite: a crate whose
//! sources verify through `kit::KeysNow` (what CONTRIBUTING.md says a format
//! does) and whose tests never call `keyroll_testkit::formats::run` fails
//! here, so a new format cannot miss the suite.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn any_contains(dir: &Path, needle: &str) -> bool {
    let mut found = Vec::new();
    files(dir, &mut found);
    found
        .iter()
        .any(|file| std::fs::read_to_string(file).is_ok_and(|text| text.contains(needle)))
}

#[test]
fn every_crate_that_verifies_tokens_runs_the_format_suite() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut formats = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap().flatten() {
        let dir = entry.path();
        // The kit itself lives in keyroll-core/src/kit; core's native format uses it too.
        if any_contains(&dir.join("src"), "KeysNow::open(") {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                any_contains(&dir.join("tests"), "formats::run"),
                "{name} verifies tokens through kit::KeysNow but its tests never run \
                 keyroll_testkit::formats::run (CONTRIBUTING.md, \"Adding a format\")"
            );
            formats.push(name);
        }
    }
    formats.sort();
    assert_eq!(
        formats,
        [
            "keyroll-core",
            "keyroll-django",
            "keyroll-fernet",
            "keyroll-flask",
            "keyroll-jwt"
        ],
        "the formats found"
    );
}
