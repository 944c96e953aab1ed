//! Shared by the format tests: run the built `keyroll`, read its output,
//! write key files.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn keyroll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .output()
        .unwrap()
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
