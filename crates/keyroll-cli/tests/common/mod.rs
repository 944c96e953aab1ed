//! The `keyroll` binary under test, and what the format tests share: run it,
//! read its output, write key files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The variable naming an installed `keyroll` to test instead of the one
/// cargo built for these tests. `scripts/test` installs the command with the
/// README's install line and points this at it, so the tests run what users
/// get.
pub const INSTALLED: &str = "KEYROLL_CLI";

/// The binary under test: `$KEYROLL_CLI` when set (it must exist), else the
/// one cargo built for this test run.
pub fn binary() -> PathBuf {
    match std::env::var_os(INSTALLED) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{INSTALLED}={} is not a file; scripts/test installs it",
                path.display()
            );
            path
        }
        None => PathBuf::from(env!("CARGO_BIN_EXE_keyroll")),
    }
}

/// A `keyroll` command with no key source from the environment.
pub fn keyroll() -> Command {
    let mut command = Command::new(binary());
    command.env_remove("KEYROLL_KEYS");
    command
}

/// Runs the binary under test with `args` and waits for its output.
pub fn run(args: &[&str]) -> Output {
    keyroll().args(args).output().unwrap()
}

/// Output as text, without the final newline.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

/// A plain key file `name` in `dir` (current key first) and its `file://` URI.
pub fn key_file_named(dir: &tempfile::TempDir, name: &str, lines: &[&str]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    format!("file://{}", path.display())
}

/// The key file `keys` in `dir`.
pub fn key_file(dir: &tempfile::TempDir, lines: &[&str]) -> String {
    key_file_named(dir, "keys", lines)
}
