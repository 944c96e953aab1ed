//! `keyroll encrypt`, `decrypt`, `reencrypt`: the relied-on contract.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

fn keyroll(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = common::keyroll()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keyroll runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

fn fernet_key() -> String {
    text(&keyroll(&["generate", "--bytes", "32"], None).stdout)
}

fn key_file(dir: &Path, lines: &[&str]) -> String {
    let path = dir.join("keys");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    format!("file://{}", path.display())
}

#[test]
fn encrypt_then_decrypt_round_trips_from_arguments_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), &[&fernet_key()]);
    let token = text(&keyroll(&["encrypt", "--keys", &keys, "api-secret ✓"], None).stdout);
    assert!(token.starts_with("gAAAAA"), "{token}");
    let out = keyroll(&["decrypt", "--keys", &keys, &token], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "api-secret ✓");

    let piped = text(&keyroll(&["encrypt", "--keys", &keys], Some(b"from stdin\n")).stdout);
    let out = keyroll(
        &["decrypt", "--keys", &keys, "--ttl", "60"],
        Some(format!("{piped}\n").as_bytes()),
    );
    assert_eq!(
        text(&out.stdout),
        "from stdin",
        "one trailing newline of stdin is not part of the value"
    );
}

#[test]
fn an_invalid_or_expired_token_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), &[&fernet_key()]);
    let out = keyroll(&["decrypt", "--keys", &keys, "not-a-token"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("malformed"), "{}", text(&out.stderr));

    let token = text(&keyroll(&["encrypt", "--keys", &keys, "v"], None).stdout);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = keyroll(&["decrypt", "--keys", &keys, "--ttl", "1", &token], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expired"), "{}", text(&out.stderr));

    let other = tempfile::tempdir().unwrap();
    let other_keys = key_file(other.path(), &[&fernet_key()]);
    let out = keyroll(&["decrypt", "--keys", &other_keys, &token], None);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_key_that_is_not_a_fernet_key_exits_2_suggesting_hkdf() {
    let dir = tempfile::tempdir().unwrap();
    let django_key = text(&keyroll(&["generate"], None).stdout);
    let keys = key_file(dir.path(), &[&django_key]);
    let out = keyroll(&["encrypt", "--keys", &keys, "v"], None);
    assert_eq!(out.status.code(), Some(2));
    let message = text(&out.stderr);
    assert!(message.contains("--derive hkdf"), "{message}");
    assert!(!message.contains(&django_key), "{message}");

    let token = text(&keyroll(&["encrypt", "--keys", &keys, "--derive", "hkdf", "v"], None).stdout);
    let out = keyroll(&["decrypt", "--keys", &keys, "--derive", "hkdf", &token], None);
    assert_eq!(text(&out.stdout), "v");
    assert_eq!(
        keyroll(&["decrypt", "--keys", &keys, "--derive", "nope", &token], None)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn decrypting_with_an_old_key_suggests_reencrypt() {
    let dir = tempfile::tempdir().unwrap();
    let old = fernet_key();
    let keys = key_file(dir.path(), &[&old]);
    let token = text(&keyroll(&["encrypt", "--keys", &keys, "v"], None).stdout);
    let keys = key_file(dir.path(), &[&fernet_key(), &old]);
    let out = keyroll(&["decrypt", "--keys", &keys, &token], None);
    assert_eq!(text(&out.stdout), "v");
    assert!(
        text(&out.stderr).contains("keyroll reencrypt"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn reencrypt_streams_every_line_and_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let old = fernet_key();
    let keys = key_file(dir.path(), &[&old]);
    let tokens: Vec<String> = (0..5)
        .map(|i| text(&keyroll(&["encrypt", "--keys", &keys, &format!("value {i}")], None).stdout))
        .collect();
    let rotated = key_file(dir.path(), &[&fernet_key(), &old]);
    let current = text(&keyroll(&["encrypt", "--keys", &rotated, "fresh"], None).stdout);
    let input = format!("{}\ngarbage line\n\n{current}\n", tokens.join("\n"));

    let out = keyroll(&["reencrypt", "--keys", &rotated], Some(input.as_bytes()));
    assert_eq!(
        out.status.code(),
        Some(1),
        "an undecryptable line makes the exit code 1"
    );
    let report = text(&out.stderr);
    assert!(
        report.contains("re-encrypted 5, already current 1, undecryptable 1 (kept unchanged), blank 1"),
        "{report}"
    );
    let output = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), input.lines().count(), "no line is dropped");
    assert_eq!(lines[5], "garbage line");
    assert_eq!(lines[6], "");
    assert_eq!(lines[7], current);

    let new_only = key_file(dir.path(), &[rotated_first_key(&rotated).as_str()]);
    for (i, line) in lines[..5].iter().enumerate() {
        let out = keyroll(&["decrypt", "--keys", &new_only, line], None);
        assert_eq!(
            text(&out.stdout),
            format!("value {i}"),
            "re-encrypted with the current key"
        );
    }
}

fn rotated_first_key(uri: &str) -> String {
    let path = uri.trim_start_matches("file://");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}
