//! What a release publishes: one version everywhere (crates, the Python
//! package, the change log), crates.io metadata on every publishable crate,
//! test-only crates unpublishable, and a declared MSRV that every dependency
//! in Cargo.lock allows. `scripts/release` builds and checks the artefacts.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The workspace's crates that never go to crates.io: test support, the
/// benchmark runner, and the Python package (shipped as a wheel).
const UNPUBLISHED: [&str; 4] = ["keyroll-bench", "keyroll-node", "keyroll-py", "keyroll-testkit"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo metadata` of the workspace, with the whole dependency graph.
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn members(metadata: &Value) -> Vec<&Value> {
    let ids = metadata["workspace_members"].as_array().unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| ids.contains(&package["id"]))
        .collect()
}

fn text<'a>(package: &'a Value, field: &str) -> &'a str {
    package[field].as_str().unwrap_or("")
}

/// "1.91" or "1.91.0" as (1, 91, 0).
fn rust_version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|part| part.parse::<u64>().unwrap());
    let version = (
        parts.next().unwrap(),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    assert!(parts.next().is_none(), "{text}");
    version
}

#[test]
fn one_version_for_every_crate_the_python_and_npm_packages_and_the_change_log() {
    let version = env!("CARGO_PKG_VERSION");
    let metadata = metadata();
    let members = members(&metadata);
    assert!(members.len() >= 16, "{}", members.len());
    for package in &members {
        assert_eq!(text(package, "version"), version, "{}", text(package, "name"));
    }
    // maturin takes the wheel's version from crates/keyroll-py/Cargo.toml,
    // which inherits the workspace's: the pyproject must not set its own.
    let pyproject = std::fs::read_to_string(root().join("crates/keyroll-py/pyproject.toml")).unwrap();
    assert!(pyproject.contains(r#"dynamic = ["version"]"#), "{pyproject}");
    assert!(
        !pyproject
            .lines()
            .any(|line| line.trim_start().starts_with("version")),
        "{pyproject}"
    );
    // The npm package's version is its package.json's: the same.
    let package: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("crates/keyroll-node/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(package["version"], version, "crates/keyroll-node/package.json");
    // Keep a Changelog: Unreleased on top, then the newest release, this one.
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
    let releases: Vec<&str> = changelog
        .lines()
        .filter_map(|line| line.strip_prefix("## ["))
        .collect();
    assert!(releases.len() >= 2, "{releases:?}");
    assert_eq!(releases[0], "Unreleased]");
    assert!(
        releases[1].starts_with(&format!("{version}] - ")),
        "the newest release in CHANGELOG.md is not {version}: {releases:?}"
    );
    for heading in ["[Unreleased]: ", &format!("[{version}]: ")] {
        assert!(changelog.contains(heading), "no link for {heading}");
    }
}

#[test]
fn publishable_crates_have_complete_metadata_and_test_crates_are_unpublishable() {
    let metadata = metadata();
    for package in members(&metadata) {
        let name = text(package, "name");
        let publishable = package["publish"].is_null();
        assert_eq!(
            publishable,
            !UNPUBLISHED.contains(&name),
            "{name}: publish = {}",
            package["publish"]
        );
        if !publishable {
            continue;
        }
        for field in ["description", "license", "readme", "repository", "rust_version"] {
            assert!(!text(package, field).is_empty(), "{name} has no {field}");
        }
        let readme = Path::new(text(package, "manifest_path"))
            .parent()
            .unwrap()
            .join(text(package, "readme"));
        assert!(readme.is_file(), "{name}: {}", readme.display());
        let keywords = package["keywords"].as_array().unwrap();
        assert!((1..=5).contains(&keywords.len()), "{name}: {keywords:?}");
        for keyword in keywords {
            let keyword = keyword.as_str().unwrap();
            assert!(
                keyword.len() <= 20
                    && keyword.starts_with(|c: char| c.is_ascii_alphabetic())
                    && keyword
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c)),
                "{name}: crates.io refuses the keyword `{keyword}`"
            );
        }
        let categories = package["categories"].as_array().unwrap();
        assert!((1..=5).contains(&categories.len()), "{name}: {categories:?}");
        // docs.rs documents default features only unless told: a crate with
        // optional features names those to document.
        let features = package["features"].as_object().unwrap();
        let optional = features
            .keys()
            .any(|feature| feature != "default" && feature != "fuzzing");
        if optional && name != "keyroll-cli" {
            // `[package.metadata.docs.rs]`: TOML reads the dotted key as docs.rs.
            let docs = &package["metadata"]["docs"]["rs"];
            assert!(
                docs["features"].is_array() || docs["all-features"] == true,
                "{name} has optional features but no [package.metadata.docs.rs]"
            );
        }
    }
}

#[test]
fn every_locked_dependency_builds_with_the_declared_msrv() {
    let msrv = rust_version(env!("CARGO_PKG_RUST_VERSION"));
    // Edition 2024 and let chains (stable in 1.88) are the newest language
    // features the workspace uses; clippy's `incompatible_msrv` lint (on in CI)
    // flags standard library items newer than the MSRV.
    assert!(msrv >= (1, 88, 0), "{msrv:?}");
    let metadata = metadata();
    let mut newer = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        if let Some(needs) = package["rust_version"].as_str()
            && rust_version(needs) > msrv
        {
            newer.push(format!(
                "{} {} needs {needs}",
                text(package, "name"),
                text(package, "version")
            ));
        }
    }
    assert!(
        newer.is_empty(),
        "Cargo.lock holds crates that need a newer Rust than rust-version {}: {newer:?}",
        env!("CARGO_PKG_RUST_VERSION")
    );
}
