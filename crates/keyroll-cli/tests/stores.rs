//! The command reaches every store it is built with, as installed by the
//! README's install line (`scripts/test` points `KEYROLL_CLI` at that
//! install): `check`, `sign` + `verify`, and `rotate` where the store can be
//! written, for each of the six schemes, against the real servers.

mod common;

use std::process::Output;

use keyroll_testkit::gcp::SecretManagerServer;
use keyroll_testkit::moto::{self, Moto};
use keyroll_testkit::openbao::OpenBao;
use keyroll_testkit::python::{in_ci, python_with};

const KEY: &str = "stores-test-key-0123456789abcdefghijklmnopqrstuvwxyz";
const FALLBACK: &str = "stores-test-old-0123456789abcdefghijklmnopqrstuvwxyz";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

/// Runs `keyroll ARGS --keys KEYS` with `env` added to its environment.
fn keyroll(keys: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    common::keyroll()
        .args(args)
        .args(["--keys", keys])
        .envs(env.iter().copied())
        .output()
        .expect("keyroll runs")
}

/// The roles `keyroll check` lists, in its order.
fn roles(keys: &str, env: &[(&str, &str)]) -> Vec<String> {
    let out = keyroll(keys, env, &["check"]);
    assert_eq!(out.status.code(), Some(0), "check {keys}: {}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert_eq!(
        shown.lines().next(),
        Some(keys),
        "check names the source first: {shown}"
    );
    shown
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

/// A token for `value` from `keyroll sign`.
fn sign(keys: &str, env: &[(&str, &str)], value: &str) -> String {
    let out = keyroll(keys, env, &["sign", value]);
    assert_eq!(out.status.code(), Some(0), "sign {keys}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn assert_verifies(keys: &str, env: &[(&str, &str)], token: &str, value: &str) {
    let out = keyroll(keys, env, &["verify", token]);
    assert_eq!(out.status.code(), Some(0), "verify {keys}: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), value, "verify prints the signed value");
}

/// What every store must do from the command line: list its keys, sign and
/// verify; then publish a key with `rotate` when `writable` (a token signed
/// before keeps verifying, the new key is listed) or refuse with exit 2.
fn exercise(keys: &str, env: &[(&str, &str)], writable: bool) {
    let before = roles(keys, env);
    assert_eq!(
        before.first().map(String::as_str),
        Some("current"),
        "{keys}: {before:?}"
    );
    let token = sign(keys, env, "user=42");
    assert_verifies(keys, env, &token, "user=42");
    let tampered = format!("{token}x");
    assert_eq!(keyroll(keys, env, &["verify", &tampered]).status.code(), Some(1));

    // Staged activation must not decide the outcome of this test: publish with
    // a delay of 0 and read back with the default.
    let rotated = keyroll(keys, env, &["rotate", "--activation-delay", "0s"]);
    if writable {
        assert_eq!(
            rotated.status.code(),
            Some(0),
            "rotate {keys}: {}",
            text(&rotated.stderr)
        );
        assert!(
            text(&rotated.stdout).contains("published new key version"),
            "{}",
            text(&rotated.stdout)
        );
        let after = roles(keys, env);
        assert_eq!(
            after.len(),
            before.len() + 1,
            "{keys}: one key more: {before:?} -> {after:?}"
        );
        assert_verifies(keys, env, &token, "user=42");
        assert_verifies(keys, env, &sign(keys, env, "user=43"), "user=43");
    } else {
        assert_eq!(
            rotated.status.code(),
            Some(2),
            "{keys}: {}",
            text(&rotated.stdout)
        );
        assert!(
            text(&rotated.stderr).contains("not supported"),
            "{}",
            text(&rotated.stderr)
        );
    }
}

#[test]
fn under_ci_the_installed_command_is_the_one_tested() {
    if in_ci() {
        assert!(
            std::env::var_os(common::INSTALLED).is_some(),
            "CI tests the command as installed: run scripts/test, which sets {}",
            common::INSTALLED
        );
    }
    // Whichever binary this is, it names every store in its help.
    let help = text(
        &common::keyroll()
            .args(["check", "--help"])
            .output()
            .unwrap()
            .stdout,
    );
    for scheme in [
        "env://",
        "file://",
        "docker://",
        "vault://",
        "aws-sm://",
        "gcp-sm://",
    ] {
        assert!(help.contains(scheme), "`check --help` names {scheme}: {help}");
    }
}

#[test]
fn env() {
    let env = [("STORES_TEST_KEY", KEY), ("STORES_TEST_KEY_FALLBACKS", FALLBACK)];
    exercise("env://STORES_TEST_KEY", &env, false);
}

#[test]
fn file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("{KEY}\n{FALLBACK}\n")).unwrap();
    exercise(&format!("file://{}", path.display()), &[], true);
}

#[test]
fn docker() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app_key"), KEY).unwrap();
    let root = dir.path().display().to_string();
    exercise("docker://app_key", &[("KEYROLL_SECRETS_DIR", &root)], false);
}

#[test]
fn vault() {
    let Some(bao) = OpenBao::start() else { return };
    let keys = format!("vault://127.0.0.1:{}/secret/stores-test?tls=false", bao.port());
    let env = [("VAULT_TOKEN", bao.root_token())];
    let first = keyroll(&keys, &env, &["rotate"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    exercise(&keys, &env, true);
}

#[test]
fn aws_sm() {
    let Some(moto) = Moto::start() else { return };
    let Some(python) = python_with(&["boto3"]) else {
        return;
    };
    // The key goes on stdin, not in the arguments.
    let create = "import sys, boto3\n\
        boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name=sys.argv[2],\n\
            aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])\\\n\
            .create_secret(Name='stores-test', SecretString=sys.stdin.read())";
    let endpoint = moto.endpoint();
    let created = std::process::Command::new(&python)
        .args([
            "-c",
            create,
            &endpoint,
            moto::REGION,
            moto::ACCESS_KEY_ID,
            moto::SECRET_ACCESS_KEY,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(KEY.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(created.success(), "boto3 creates the secret in moto");
    let keys = format!("aws-sm://stores-test?region={}&endpoint={endpoint}", moto::REGION);
    let env = [
        ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    exercise(&keys, &env, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_sm() {
    let server = SecretManagerServer::start().await;
    let secret = "projects/stores-test/secrets/app-key";
    server.create_secret(secret);
    server.add_version(secret, KEY.as_bytes());
    let keys = format!("gcp-sm://{secret}?endpoint={}", server.endpoint());
    // The server runs on this runtime; the command blocks another thread.
    tokio::task::spawn_blocking(move || exercise(&keys, &[], true))
        .await
        .unwrap();
}
