//! `--format flask`, checked against real Flask 3.1 both ways, with rotation,
//! and the exit-code contract for bad cookies.

mod common;

use common::{key_file_named as key_file, run as keyroll, text};
use keyroll_testkit::python::{python_with, run_python};

const KEY: &str = "flask-cli-test-key-0123456789abcdefghijklmnopqrstuvwxyz";
const NEW_KEY: &str = "flask-cli-new-key-0123456789abcdefghijklmnopqrstuvwxyz0";

/// Runs `code` with a Flask app (`SECRET_KEY = KEY`), its session interface
/// `si` and serializer `s`, inside a request context.
fn flask(python: &std::path::Path, code: &str, args: &[&str]) -> String {
    let program = format!(
        "import sys, flask\napp = flask.Flask('t')\napp.secret_key = {KEY:?}\nsi = app.session_interface\ns = si.get_signing_serializer(app)\nwith app.test_request_context():\n    {code}"
    );
    run_python(python, &program, args).trim_end().to_owned()
}

#[test]
fn flask_cookies_open_in_flask_and_back() {
    let Some(python) = python_with(&["flask"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, "keys", &[KEY]);
    let session = r#"{"cart":{" t":[1,2]},"user_id":42,"when":{" d":"Wed, 21 Oct 2015 07:28:00 GMT"}}"#;

    let out = keyroll(&["sign", "--keys", &keys, "--format", "flask", session]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let opened = flask(
        &python,
        "print(si.serializer.dumps(s.loads(sys.argv[1], max_age=60)))",
        &[&text(&out.stdout)],
    );
    assert_eq!(opened, session);

    let from_flask = flask(&python, "print(s.dumps({'user': 'py', 'b': b'\\x00'}))", &[]);
    let out = keyroll(&["verify", "--keys", &keys, "--format", "flask", &from_flask]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), r#"{"b":{" b":"AA=="},"user":"py"}"#);
}

#[test]
fn flask_cookies_of_an_old_key_verify_as_fallback_and_retired_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = key_file(&dir, "old", &[KEY]);
    let rotated = key_file(&dir, "rotated", &[NEW_KEY, KEY]);
    let new_only = key_file(&dir, "new", &[NEW_KEY]);
    let cookie = text(&keyroll(&["sign", "--keys", &old, "--format", "flask", r#"{"user_id":7}"#]).stdout);

    let out = keyroll(&["verify", "--keys", &rotated, "--format", "flask", &cookie]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), r#"{"user_id":7}"#.to_owned())
    );
    assert!(
        text(&out.stderr).contains("fallback key"),
        "{}",
        text(&out.stderr)
    );
    let out = keyroll(&["verify", "--keys", &new_only, "--format", "flask", &cookie]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bad signature"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn flask_commands_keep_the_exit_code_contract() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, "keys", &[KEY]);
    let good = text(&keyroll(&["sign", "--keys", &keys, "--format", "flask", r#"{"a":1}"#]).stdout);
    let verify = |cookie: &str, extra: &[&str]| {
        let mut args = vec!["verify", "--keys", &keys, "--format", "flask"];
        args.extend_from_slice(extra);
        args.push(cookie);
        keyroll(&args)
    };
    assert_eq!(verify(&good, &[]).status.code(), Some(0));
    let other_salt =
        text(&keyroll(&["sign", "--keys", &keys, "--format", "flask", "--salt", "x", "{}"]).stdout);
    assert_eq!(verify(&other_salt, &["--salt", "x"]).status.code(), Some(0));
    for bad in [
        "",
        "x",
        ".",
        &good[1..],
        &format!("{good}A"),
        &other_salt,
        "e30.ZVPxew.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let out = verify(bad, &[]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    for bad in ["not json", r#"{" t":1}"#] {
        assert_eq!(
            keyroll(&["sign", "--keys", &keys, "--format", "flask", bad])
                .status
                .code(),
            Some(2),
            "{bad}"
        );
    }
}
