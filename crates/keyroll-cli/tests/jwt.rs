//! `--format jwt`, checked against PyJWT both ways, with rotation, and the
//! exit-code contract for bad tokens.

mod common;

use common::{key_file_named as key_file, run as keyroll, text};
use keyroll_testkit::python::{python_with, run_python};

const KEY: &str = "jwt-cli-test-key-0123456789abcdefghijklmnopqrstuvwxyz";
const NEW_KEY: &str = "jwt-cli-new-key-0123456789abcdefghijklmnopqrstuvwxyz0";

/// Runs PyJWT with `key = KEY`; prints what `code` prints.
fn pyjwt(python: &std::path::Path, code: &str, args: &[&str]) -> String {
    let program = format!("import sys, json, time, jwt\nkey = {KEY:?}\n{code}");
    run_python(python, &program, args).trim_end().to_owned()
}

#[test]
fn jwt_tokens_verify_in_pyjwt_and_back() {
    let Some(python) = python_with(&["jwt"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, "keys", &[KEY]);

    let out = keyroll(&[
        "sign",
        "--keys",
        &keys,
        "--format",
        "jwt",
        "--ttl",
        "600",
        r#"{"sub": "42", "name": "Zoë"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout);
    let claims = pyjwt(
        &python,
        "c = jwt.decode(sys.argv[1], key, algorithms=['HS256'])\nassert jwt.get_unverified_header(sys.argv[1])['kid']\nassert c['iat'] <= time.time() < c['exp'] and c['exp'] - c['iat'] == 600\nprint(c['sub'], c['name'], c['exp'] - c['iat'])",
        &[&token],
    );
    assert_eq!(claims, "42 Zoë 600");

    let from_pyjwt = pyjwt(
        &python,
        "print(jwt.encode({'sub': 'py', 'exp': int(time.time()) + 60, 'n': [1, 2]}, key, algorithm='HS256'))",
        &[],
    );
    let out = keyroll(&["verify", "--keys", &keys, "--format", "jwt", &from_pyjwt]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let claims: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        (&claims["sub"], &claims["n"]),
        (&serde_json::json!("py"), &serde_json::json!([1, 2]))
    );
}

#[test]
fn jwt_tokens_of_an_old_key_verify_as_fallback_and_retired_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = key_file(&dir, "old", &[KEY]);
    let rotated = key_file(&dir, "rotated", &[NEW_KEY, KEY]);
    let new_only = key_file(&dir, "new", &[NEW_KEY]);
    let token = text(
        &keyroll(&[
            "sign",
            "--keys",
            &old,
            "--format",
            "jwt",
            "--ttl",
            "60",
            r#"{"sub": "old"}"#,
        ])
        .stdout,
    );

    let out = keyroll(&["verify", "--keys", &rotated, "--format", "jwt", &token]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(r#""sub":"old""#));
    assert!(
        text(&out.stderr).contains("fallback key"),
        "{}",
        text(&out.stderr)
    );

    let out = keyroll(&["verify", "--keys", &new_only, "--format", "jwt", &token]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not (or no longer) accepted"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn jwt_commands_keep_the_exit_code_contract() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, "keys", &[KEY]);
    let sign = |claims: &str, extra: &[&str]| {
        let mut args = vec!["sign", "--keys", &keys, "--format", "jwt"];
        args.extend_from_slice(extra);
        args.push(claims);
        keyroll(&args)
    };
    let verify = |token: &str| keyroll(&["verify", "--keys", &keys, "--format", "jwt", token]);

    // Expired (exp an hour ago, beyond the 60 s leeway) and exp-less tokens: exit 1.
    let expired = text(&sign(r#"{"exp": 1000000000}"#, &[]).stdout);
    let out = verify(&expired);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expired"), "{}", text(&out.stderr));
    let forever = text(&sign(r#"{"sub": "x"}"#, &[]).stdout);
    assert_eq!(verify(&forever).status.code(), Some(1));

    let good = text(&sign("{}", &["--ttl", "60"]).stdout);
    let oversized = format!("{good}{}", "A".repeat(10_000));
    for bad in [
        "",
        "x",
        "a.b.c",
        "a.b",
        &good[1..],
        &format!("{good}A"),
        &oversized,
        "e30.e30.",
        "🦀.🦀.🦀",
    ] {
        let out = verify(bad);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    // Usage errors: exit 2.
    for (claims, extra) in [
        ("not json", &[][..]),
        ("[1]", &[]),
        ("{}", &["--salt", "s"]),
        ("{}", &["--timestamp"]),
    ] {
        assert_eq!(sign(claims, extra).status.code(), Some(2), "{claims} {extra:?}");
    }
    let out = keyroll(&["sign", "--keys", &keys, "--ttl", "5", "value"]);
    assert_eq!(out.status.code(), Some(2));
    let out = keyroll(&[
        "verify",
        "--keys",
        &keys,
        "--format",
        "jwt",
        "--max-age",
        "5",
        &good,
    ]);
    assert_eq!(out.status.code(), Some(2));
}
