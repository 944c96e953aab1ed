//! Sets `KEYROLL_GIT_COMMIT` for `keyroll --version`: the commit this build
//! comes from, read from git in a checkout, else from the
//! `.cargo_vcs_info.json` that `cargo package` writes into a published crate,
//! else `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let commit = from_git(Path::new(&dir))
        .or_else(|| from_vcs_info(Path::new(&dir)))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KEYROLL_GIT_COMMIT={commit}");
    // Watch only files that exist: a missing one would rerun every build.
    for file in ["build.rs", ".cargo_vcs_info.json"] {
        if Path::new(&dir).join(file).exists() {
            println!("cargo:rerun-if-changed={file}");
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn from_git(dir: &Path) -> Option<String> {
    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    // Run again when HEAD moves: a checkout, or a commit on the branch (its
    // loose ref, or packed-refs). A missing file would rerun every build.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(dir, &["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

fn from_vcs_info(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let start = text.find("\"sha1\"")? + "\"sha1\"".len();
    let hex: String = text[start..]
        .chars()
        .skip_while(|c| !c.is_ascii_hexdigit())
        .take_while(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    (!hex.is_empty()).then_some(hex)
}
