//! `--format django`, `keyroll dumps` and `keyroll loads`, checked against real
//! Django both ways.

mod common;

use common::{key_file, run as keyroll, text};
use keyroll_testkit::python::{python_with, run_python};

const KEY: &str = "django-cli-test-key-0123456789abcdefghijklmnopqrstuvwxyz";

/// Runs Django's signing with `settings.SECRET_KEY = KEY`; prints what `code` prints.
fn django(python: &std::path::Path, code: &str, args: &[&str]) -> String {
    let program = format!(
        "import sys, json\nfrom django.conf import settings\nsettings.configure(SECRET_KEY={KEY:?})\nfrom django.core import signing\n{code}"
    );
    run_python(python, &program, args).trim_end().to_owned()
}

#[test]
fn django_format_tokens_verify_in_django_and_back() {
    let Some(python) = python_with(&["django"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, &[KEY]);

    let token = text(&keyroll(&["sign", "--keys", &keys, "--format", "django", "héllo: world"]).stdout);
    let unsigned = django(&python, "print(signing.Signer().unsign(sys.argv[1]))", &[&token]);
    assert_eq!(unsigned, "héllo: world");

    let timed = text(
        &keyroll(&[
            "sign",
            "--keys",
            &keys,
            "--format",
            "django",
            "--timestamp",
            "--salt",
            "s",
            "v",
        ])
        .stdout,
    );
    let unsigned = django(
        &python,
        "print(signing.TimestampSigner(salt='s').unsign(sys.argv[1], max_age=60))",
        &[&timed],
    );
    assert_eq!(unsigned, "v");

    let from_django = django(&python, "print(signing.Signer().sign('made by django'))", &[]);
    let out = keyroll(&["verify", "--keys", &keys, "--format", "django", &from_django]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "made by django");

    let stamped = django(
        &python,
        "print(signing.TimestampSigner(salt='x').sign('stamped'))",
        &[],
    );
    let out = keyroll(&[
        "verify",
        "--keys",
        &keys,
        "--format",
        "django",
        "--salt",
        "x",
        "--max-age",
        "60",
        &stamped,
    ]);
    assert_eq!(text(&out.stdout), "stamped");
}

#[test]
fn django_tokens_from_an_old_key_verify_as_fallback() {
    let Some(python) = python_with(&["django"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from_django = django(&python, "print(signing.Signer().sign('old session'))", &[]);
    let keys = key_file(
        &dir,
        &["a-brand-new-key-0123456789abcdefghijklmnopqrstuvwxyz", KEY],
    );
    let out = keyroll(&["verify", "--keys", &keys, "--format", "django", &from_django]);
    assert_eq!(text(&out.stdout), "old session");
    assert!(
        text(&out.stderr).contains("fallback key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dumps_and_loads_interoperate_with_django_keeping_key_order() {
    let Some(python) = python_with(&["django"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, &[KEY]);
    let json = r#"{"user": 42, "name": "Zoë", "roles": ["a", "b"], "items": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}"#;

    for extra in [&[][..], &["--compress"][..]] {
        let mut args = vec!["dumps", "--keys", &keys];
        args.extend_from_slice(extra);
        args.push(json);
        let token = text(&keyroll(&args).stdout);
        assert_eq!(token.starts_with('.'), !extra.is_empty(), "{token}");
        let loaded = django(
            &python,
            "print(json.dumps(signing.loads(sys.argv[1]), separators=(',', ':')))",
            &[&token],
        );
        assert_eq!(
            loaded,
            r#"{"user":42,"name":"Zo\u00eb","roles":["a","b"],"items":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}"#
        );
    }

    let from_django = django(
        &python,
        "print(signing.dumps({'z': 1, 'a': [True, None]}, salt='invites', compress=True))",
        &[],
    );
    let out = keyroll(&[
        "loads",
        "--keys",
        &keys,
        "--salt",
        "invites",
        "--max-age",
        "60",
        &from_django,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), r#"{"z":1,"a":[true,null]}"#);
}

#[test]
fn django_commands_keep_the_exit_code_contract() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, &[KEY]);
    let token = text(&keyroll(&["sign", "--keys", &keys, "--format", "django", "v"]).stdout);
    let tampered = token.replacen("v:", "w:", 1);
    let out = keyroll(&["verify", "--keys", &keys, "--format", "django", &tampered]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).to_lowercase().contains("signature"),
        "{}",
        text(&out.stderr)
    );

    let out = keyroll(&["dumps", "--keys", &keys, "{not json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not JSON"), "{}", text(&out.stderr));

    let out = keyroll(&["sign", "--keys", &keys, "--format", "django", "--salt", "s", "v"]);
    let plain = text(&out.stdout);
    let out = keyroll(&["loads", "--keys", &keys, "--salt", "s", &plain]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a plain signed value is not a dumps token"
    );

    let stamped = text(&keyroll(&["dumps", "--keys", &keys, "[1]"]).stdout);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = keyroll(&["loads", "--keys", &keys, "--max-age", "0", &stamped]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("expired") || text(&out.stderr).contains("Expired"),
        "{}",
        text(&out.stderr)
    );

    let out = keyroll(&["sign", "--keys", &keys, "--format", "django", "--salt", "", "v"]);
    assert_eq!(out.status.code(), Some(0));
}
