//! The Python environment with the interop peers (Django, `cryptography`) and
//! server packages (OpenBao, moto) that `scripts/test` installs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (where `Cargo.toml` of the facade lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/keyroll-testkit sits two levels below the workspace root")
        .to_path_buf()
}

/// The test virtualenv: `$KEYROLL_VENV`, else `.venv` in the workspace root.
pub fn venv() -> PathBuf {
    std::env::var_os("KEYROLL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
}

/// True when running under CI (`CI` set and not `false`/`0`): missing
/// components then fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Reports a missing external component: panics under CI, otherwise prints
/// why the test is skipped and returns `None` so the caller can return early.
pub fn missing<T>(what: &str) -> Option<T> {
    let message = format!("{what} is not installed; run scripts/test to set up the test environment");
    assert!(!in_ci(), "CI requires every external component: {message}");
    eprintln!("SKIPPED: {message}");
    None
}

/// The venv's Python interpreter, if the venv exists and can import every
/// module in `modules`.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let python = venv().join("bin").join("python");
    let check = format!("import {}", modules.join(", "));
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", &check])
            .output()
            .is_ok_and(|out| out.status.success());
    if ok {
        Some(python)
    } else {
        missing(&format!("Python with {}", modules.join(", ")))
    }
}

/// A console script installed in the venv (`moto_server`), or a file inside an
/// installed package found by `locate` (Python code printing a path).
pub fn venv_program(name: &str) -> Option<PathBuf> {
    let path = venv().join("bin").join(name);
    if path.exists() { Some(path) } else { missing(name) }
}

/// Runs a Python snippet in the venv and returns its stdout, panicking with
/// its stderr when it fails.
pub fn run_python(python: &Path, code: &str, args: &[&str]) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed: {}\n--- code ---\n{code}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("python prints UTF-8")
}

/// Runs a batch peer (`django_peer.py`, `pyjwt_peer.py`, …): Python code that
/// reads a JSON list of operations from `argv[1]` and prints a JSON list with
/// one result per operation. `None` when the venv cannot import `modules`
/// (outside CI).
pub fn run_peer(modules: &[&str], peer: &str, ops: &[serde_json::Value]) -> Option<Vec<serde_json::Value>> {
    let python = python_with(modules)?;
    let request = serde_json::to_string(ops).expect("operations serialize");
    let results: Vec<serde_json::Value> =
        serde_json::from_str(&run_python(&python, peer, &[&request])).expect("the peer prints a JSON list");
    assert_eq!(results.len(), ops.len(), "one result per operation");
    Some(results)
}
