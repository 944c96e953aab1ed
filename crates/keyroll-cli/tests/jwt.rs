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
    // Issue 24 item 12: sign made exp-less tokens that verify refused; it
    // now requires --ttl unless the claims carry a numeric exp.
    for claims in [r#"{"sub": "x"}"#, r#"{"sub": "x", "exp": "soon"}"#] {
        let out = sign(claims, &[]);
        assert_eq!(out.status.code(), Some(2), "{claims}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("needs --ttl"), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    let in_an_hour = format!(
        r#"{{"sub": "x", "exp": {}}}"#,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600
    );
    let own_exp = text(&sign(&in_an_hour, &[]).stdout);
    assert_eq!(verify(&own_exp).status.code(), Some(0));

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

/// Issue 24 item 10: `"crit": null` verified, while RFC 7515 §4.1.11
/// requires an array. The token is a good one re-signed (by Python's
/// standard library) with `crit: null` added to its header. (PyJWT 2.10.1,
/// the pinned peer, accepts it too.)
#[test]
fn a_jwt_whose_crit_header_is_null_is_refused() {
    let Some(python) = python_with(&["jwt"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir, "keys", &[KEY]);
    let good = keyroll(&["sign", "--keys", &keys, "--format", "jwt", "--ttl", "600", "{}"]);
    let good = text(&good.stdout);
    let forged = pyjwt(
        &python,
        "import base64, hmac, hashlib\n\
         b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=')\n\
         h, p, _ = sys.argv[1].split('.')\n\
         header = json.loads(base64.urlsafe_b64decode(h + '=' * (-len(h) % 4)))\n\
         header['crit'] = None\n\
         signed = b64(json.dumps(header).encode()) + b'.' + p.encode()\n\
         mac = hmac.new(key.encode(), signed, hashlib.sha256).digest()\n\
         print((signed + b'.' + b64(mac)).decode())",
        &[&good],
    );
    let out = keyroll(&["verify", "--keys", &keys, "--format", "jwt", &forged]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let out = keyroll(&["verify", "--keys", &keys, "--format", "jwt", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
