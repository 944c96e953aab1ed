//! Interop with real Django 5.2.19 (from the test venv), both ways: values made
//! by Django verify here, values made here verify in Django, and at the same
//! frozen time both make the same bytes. Each test batches its cases into one
//! Python run (`django_peer.py`).

mod common;

use std::time::{Duration, SystemTime};

use common::at;
use keyroll_core::{Keyring, Role};
use keyroll_django::PayloadError;
use keyroll_django::json::JsonText;
use keyroll_django::{
    Algorithm, CookieSigner, DUMPS_SALT, Error, SignedCookieSessions, Signer, TimestampSigner, VerifiedBy,
};
use keyroll_testkit::python::run_peer;
use serde_json::{Value, json};

const PEER: &str = include_str!("django_peer.py");

/// Runs `ops` in Django; `None` when the venv is missing (outside CI).
fn django(ops: &[Value]) -> Option<Vec<Value>> {
    run_peer(&["django"], PEER, ops)
}

fn ok(result: &Value) -> &Value {
    result
        .get("ok")
        .unwrap_or_else(|| panic!("Django raised: {result}"))
}

fn ok_str(result: &Value) -> &str {
    ok(result)
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {result}"))
}

fn raised(result: &Value) -> &str {
    result["error"]
        .as_str()
        .unwrap_or_else(|| panic!("Django accepted what it should refuse: {result}"))
}

/// A key list as Django settings (`SECRET_KEY`, then `SECRET_KEY_FALLBACKS`)
/// and as a keyring (current, then `fallback-1`, `fallback-2`, …).
#[derive(Clone)]
struct Keys(Vec<Vec<u8>>);

impl Keys {
    fn text(keys: &[&str]) -> Self {
        Self(keys.iter().map(|k| k.as_bytes().to_vec()).collect())
    }

    fn settings(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|key| match std::str::from_utf8(key) {
                    Ok(text) => json!({"text": text}),
                    Err(_) => json!({"hex": key.iter().map(|b| format!("{b:02x}")).collect::<String>()}),
                })
                .collect(),
        )
    }

    fn keyring(&self) -> Keyring {
        let fallbacks: Vec<&[u8]> = self.0[1..].iter().map(Vec::as_slice).collect();
        common::keyring(&self.0[0], &fallbacks)
    }

    /// Only key `index` of the list, alone: a Django that still signs with it.
    fn only(&self, index: usize) -> Keys {
        Keys(vec![self.0[index].clone()])
    }
}

fn main_keys() -> Keys {
    Keys::text(&[
        "django-insecure-current-key-for-keyroll-interop-0001",
        "previous-key-for-keyroll-interop-00000000000000000002",
        "oldest-key-for-keyroll-interop-000000000000000000003",
    ])
}

fn unicode_keys() -> Keys {
    Keys::text(&[
        "ключ-🔑-clé-secrète-schlüssel-0123456789abcdef",
        "ancienne-clé-é-ü-0123456789abcdefghijklmn",
    ])
}

fn byte_keys() -> Keys {
    let mut current = vec![0xe7, 0xff, 0x00, 0x80];
    current.extend(0..40u8);
    Keys(vec![
        current,
        b"text-fallback-next-to-a-binary-key-000000000".to_vec(),
    ])
}

/// `op` with the keys (and the frozen time, when given) added.
fn op(keys: &Keys, time: Option<u64>, mut op: Value) -> Value {
    op["keys"] = keys.settings();
    if let Some(time) = time {
        op["time"] = json!(time);
    }
    op
}

const T: u64 = 1_700_000_123;

fn at_t() -> SystemTime {
    at(T)
}

fn hour_before_t() -> SystemTime {
    at(T - 3600)
}

const UNICODE_VALUE: &str = "héllo wörld ✓ 😀 中文 \"quoted\" back\\slash";
const OBJECT_JSON: &str = r#"{"user": 42, "name": "Zoë 😀", "roles": ["admin", "staff"], "ratio": 0.25,
    "big": 1e16, "tiny": 1e-05, "neg": -7, "ok": true, "none": null, "esc": "a\"b\\c\n\t\u0001\u007f/"}"#;
const LIST_JSON: &str = "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]";
const REPETITIVE_JSON: &str = r#"{"cart": ["item-0001", "item-0001", "item-0001", "item-0001", "item-0001"], "note": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
const SESSION_JSON: &str = r#"{"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": "8f14e45fceea167a5a36dedd4bea2543", "cart": [1, 2, 3], "greeting": "grüß dich"}"#;

type Make = Box<dyn Fn(Keyring) -> String>;

/// At the same frozen time, Rust and Django make the same bytes for every kind
/// of value, option and key.
#[test]
fn rust_and_django_make_identical_values() {
    let main = main_keys();
    let cases: Vec<(&str, Keys, Value, Make)> = vec![
        (
            "Signer defaults",
            main.clone(),
            json!({"op": "sign", "value": "hello world"}),
            Box::new(|k| Signer::new(k).sign("hello world").unwrap()),
        ),
        (
            "Signer custom salt, unicode value",
            main.clone(),
            json!({"op": "sign", "value": UNICODE_VALUE, "salt": "password-reset"}),
            Box::new(|k| {
                Signer::builder(k)
                    .salt("password-reset")
                    .build()
                    .unwrap()
                    .sign(UNICODE_VALUE)
                    .unwrap()
            }),
        ),
        (
            "Signer separator /",
            main.clone(),
            json!({"op": "sign", "value": "a:b/c", "sep": "/"}),
            Box::new(|k| {
                Signer::builder(k)
                    .separator("/")
                    .build()
                    .unwrap()
                    .sign("a:b/c")
                    .unwrap()
            }),
        ),
        (
            "Signer multi-character separator",
            main.clone(),
            json!({"op": "sign", "value": "value", "sep": "*sep*"}),
            Box::new(|k| {
                Signer::builder(k)
                    .separator("*sep*")
                    .build()
                    .unwrap()
                    .sign("value")
                    .unwrap()
            }),
        ),
        (
            "Signer sha512",
            main.clone(),
            json!({"op": "sign", "value": "hello", "algorithm": "sha512"}),
            Box::new(|k| {
                Signer::builder(k)
                    .algorithm(Algorithm::Sha512)
                    .build()
                    .unwrap()
                    .sign("hello")
                    .unwrap()
            }),
        ),
        (
            "Signer sha1",
            main.clone(),
            json!({"op": "sign", "value": "hello", "algorithm": "sha1"}),
            Box::new(|k| {
                Signer::builder(k)
                    .algorithm(Algorithm::Sha1)
                    .build()
                    .unwrap()
                    .sign("hello")
                    .unwrap()
            }),
        ),
        (
            "Signer unicode keys",
            unicode_keys(),
            json!({"op": "sign", "value": UNICODE_VALUE}),
            Box::new(|k| Signer::new(k).sign(UNICODE_VALUE).unwrap()),
        ),
        (
            "Signer binary key",
            byte_keys(),
            json!({"op": "sign", "value": "hello"}),
            Box::new(|k| Signer::new(k).sign("hello").unwrap()),
        ),
        (
            "TimestampSigner defaults",
            main.clone(),
            json!({"op": "ts_sign", "value": "hello"}),
            Box::new(|k| {
                TimestampSigner::builder(k)
                    .clock(at_t)
                    .build()
                    .unwrap()
                    .sign("hello")
                    .unwrap()
            }),
        ),
        (
            "TimestampSigner custom salt and separator, unicode",
            unicode_keys(),
            json!({"op": "ts_sign", "value": UNICODE_VALUE, "salt": "invite", "sep": ","}),
            Box::new(|k| {
                let signer = TimestampSigner::builder(k)
                    .salt("invite")
                    .separator(",")
                    .clock(at_t)
                    .build();
                signer.unwrap().sign(UNICODE_VALUE).unwrap()
            }),
        ),
        (
            "Signer.sign_object",
            main.clone(),
            json!({"op": "sign_object", "value": {"message": "Hello!"}}),
            Box::new(|k| {
                Signer::new(k)
                    .sign_object(&json!({"message": "Hello!"}), false)
                    .unwrap()
            }),
        ),
        (
            "Signer.sign_object compressed",
            main.clone(),
            json!({"op": "sign_object", "value": serde_json::from_str::<Value>(LIST_JSON).unwrap(), "compress": true}),
            Box::new(|k| Signer::new(k).sign_object(&JsonText(LIST_JSON), true).unwrap()),
        ),
        (
            "dumps, floats and escapes",
            main.clone(),
            json!({"op": "dumps", "json": OBJECT_JSON}),
            Box::new(|k| {
                dumps_at_t(k, DUMPS_SALT)
                    .sign_object(&JsonText(OBJECT_JSON), false)
                    .unwrap()
            }),
        ),
        (
            "dumps compressed",
            main.clone(),
            json!({"op": "dumps", "json": REPETITIVE_JSON, "compress": true}),
            Box::new(|k| {
                dumps_at_t(k, DUMPS_SALT)
                    .sign_object(&JsonText(REPETITIVE_JSON), true)
                    .unwrap()
            }),
        ),
        (
            "dumps compress asked but not worth it",
            main.clone(),
            json!({"op": "dumps", "json": "\"short\"", "compress": true}),
            Box::new(|k| dumps_at_t(k, DUMPS_SALT).sign_object("short", true).unwrap()),
        ),
        (
            "dumps custom salt, unicode keys",
            unicode_keys(),
            json!({"op": "dumps", "json": OBJECT_JSON, "salt": "my.app", "compress": true}),
            Box::new(|k| {
                dumps_at_t(k, "my.app")
                    .sign_object(&JsonText(OBJECT_JSON), true)
                    .unwrap()
            }),
        ),
        (
            "set_signed_cookie",
            main.clone(),
            json!({"op": "set_cookie", "name": "theme", "value": "dark"}),
            Box::new(|k| {
                CookieSigner::builder(k, "theme")
                    .clock(at_t)
                    .build()
                    .sign("dark")
                    .unwrap()
            }),
        ),
        (
            "set_signed_cookie with salt, unicode keys",
            unicode_keys(),
            json!({"op": "set_cookie", "name": "prefs", "value": "lang=de", "salt": "ui"}),
            Box::new(|k| {
                CookieSigner::builder(k, "prefs")
                    .salt("ui")
                    .clock(at_t)
                    .build()
                    .sign("lang=de")
                    .unwrap()
            }),
        ),
        (
            "signed_cookies session",
            main.clone(),
            json!({"op": "session_save", "json": SESSION_JSON}),
            Box::new(|k| {
                SignedCookieSessions::with_clock(k, at_t)
                    .save(&JsonText(SESSION_JSON))
                    .unwrap()
            }),
        ),
    ];
    let ops: Vec<Value> = cases
        .iter()
        .map(|(_, keys, django_op, _)| op(keys, Some(T), django_op.clone()))
        .collect();
    let Some(results) = django(&ops) else { return };
    for ((name, keys, _, make), result) in cases.iter().zip(&results) {
        assert_eq!(make(keys.keyring()), ok_str(result), "{name}");
    }
}

fn dumps_at_t(keyring: Keyring, salt: &str) -> TimestampSigner {
    TimestampSigner::builder(keyring)
        .salt(salt)
        .clock(at_t)
        .build()
        .unwrap()
}

fn key(id: &str, role: Role) -> VerifiedBy {
    VerifiedBy { id: id.into(), role }
}

/// Django signs with its current key, or with a key that Rust holds as its
/// second fallback (a Django replica not yet rotated); Rust verifies every
/// kind of value and says which key matched.
#[test]
fn django_made_values_verify_in_rust() {
    let main = main_keys();
    let mut ops = Vec::new();
    let mut expected = Vec::new();
    for (django_keys, verified_by) in [
        (main.clone(), key("current", Role::Current)),
        (main.only(2), key("fallback-2", Role::Fallback)),
    ] {
        for django_op in [
            json!({"op": "sign", "value": UNICODE_VALUE}),
            json!({"op": "sign", "value": "a:b:c", "salt": "custom"}),
            json!({"op": "ts_sign", "value": UNICODE_VALUE}),
            json!({"op": "sign_object", "value": serde_json::from_str::<Value>(REPETITIVE_JSON).unwrap(), "compress": true}),
            json!({"op": "dumps", "json": OBJECT_JSON}),
            json!({"op": "dumps", "json": REPETITIVE_JSON, "compress": true}),
            json!({"op": "set_cookie", "name": "theme", "value": "dark", "salt": "ui"}),
            json!({"op": "set_legacy_cookie", "name": "theme", "value": "dark", "salt": "ui"}),
            json!({"op": "session_save", "json": SESSION_JSON}),
        ] {
            ops.push(op(&django_keys, None, django_op.clone()));
            expected.push((django_op, verified_by.clone()));
        }
    }
    let Some(results) = django(&ops) else { return };
    let keyring = main.keyring();
    let signer = Signer::new(keyring.clone());
    let custom = Signer::builder(keyring.clone()).salt("custom").build().unwrap();
    let timestamped = TimestampSigner::new(keyring.clone());
    let dumps = TimestampSigner::for_dumps(keyring.clone());
    let cookie = CookieSigner::builder(keyring.clone(), "theme").salt("ui").build();
    let sessions = SignedCookieSessions::new(keyring);
    let minute = Some(Duration::from_secs(60));
    let object = |json: &str| serde_json::from_str::<Value>(json).unwrap();

    for ((django_op, verified_by), result) in expected.iter().zip(&results) {
        let token = ok_str(result);
        let what = format!("{django_op} -> {token}");
        match (django_op["op"].as_str().unwrap(), django_op.get("salt")) {
            ("sign", None) => {
                let verified = signer.verify(token).unwrap();
                assert_eq!(
                    (verified.value, &verified.key),
                    (UNICODE_VALUE, verified_by),
                    "{what}"
                );
                assert_eq!(verified.needs_resign(), verified_by.role != Role::Current);
            }
            ("sign", Some(_)) => {
                assert_eq!(custom.verify(token).unwrap().key, *verified_by, "{what}");
                assert_eq!(custom.verify(token).unwrap().value, "a:b:c", "{what}");
                assert_eq!(
                    signer.verify(token).unwrap_err(),
                    Error::BadSignature,
                    "salt separates: {what}"
                );
            }
            ("ts_sign", _) => {
                let verified = timestamped.verify(token, minute).unwrap();
                assert_eq!(
                    (verified.value, &verified.key),
                    (UNICODE_VALUE, verified_by),
                    "{what}"
                );
                let age = SystemTime::now()
                    .duration_since(verified.timestamp.unwrap())
                    .unwrap();
                assert!(age < Duration::from_secs(60), "{what}");
            }
            ("sign_object", _) => {
                assert!(token.starts_with('.'), "compressed: {what}");
                let verified = signer.verify_object::<Value>(token).unwrap();
                assert_eq!(
                    (verified.value, verified.key),
                    (object(REPETITIVE_JSON), verified_by.clone())
                );
            }
            ("dumps", _) => {
                let verified = dumps.verify_object::<Value>(token, minute).unwrap();
                assert_eq!(
                    verified.value,
                    object(django_op["json"].as_str().unwrap()),
                    "{what}"
                );
                assert_eq!(verified.key, *verified_by, "{what}");
            }
            ("set_cookie", _) => {
                let read = cookie.verify(token, minute).unwrap();
                assert_eq!(
                    (read.value, &read.key, read.legacy_salt),
                    ("dark", verified_by, false),
                    "{what}"
                );
            }
            ("set_legacy_cookie", _) => {
                let read = cookie.verify(token, minute).unwrap();
                assert_eq!(
                    (read.value, &read.key, read.legacy_salt),
                    ("dark", verified_by, true),
                    "{what}"
                );
                assert!(read.needs_resign(), "a legacy-salt cookie is set again: {what}");
                let strict = CookieSigner::builder(main.keyring(), "theme")
                    .salt("ui")
                    .legacy_salt_fallback(false);
                assert_eq!(
                    strict.build().verify(token, minute).unwrap_err(),
                    Error::BadSignature
                );
            }
            ("session_save", _) => {
                let session = sessions.load(token).unwrap();
                assert_eq!(Value::Object(session.value), object(SESSION_JSON), "{what}");
                assert_eq!(session.key, *verified_by, "{what}");
            }
            (other, _) => unreachable!("no check for {other}"),
        }
    }
}

/// Rust signs with the current key, or (a Rust replica not yet rotated) with
/// what Django holds as its second fallback; real Django accepts every value.
#[test]
fn rust_made_values_verify_in_django() {
    let main = main_keys();
    let unicode = unicode_keys();
    let mut ops = Vec::new();
    let mut expected = Vec::new();
    for (rust_keys, django_keys) in [
        (main.clone(), main.clone()),
        (main.only(2), main.clone()),
        (unicode.clone(), unicode.clone()),
        (byte_keys(), byte_keys()),
    ] {
        let keyring = rust_keys.keyring();
        let object = serde_json::from_str::<Value>(OBJECT_JSON).unwrap();
        let session = serde_json::from_str::<Value>(SESSION_JSON).unwrap();
        let cases = [
            (
                json!({"op": "unsign", "token": Signer::new(keyring.clone()).sign(UNICODE_VALUE).unwrap()}),
                json!(UNICODE_VALUE),
            ),
            (
                json!({"op": "unsign", "sep": "/", "salt": "s",
                       "token": Signer::builder(keyring.clone()).separator("/").salt("s").build().unwrap().sign("x/y").unwrap()}),
                json!("x/y"),
            ),
            (
                json!({"op": "ts_unsign", "max_age": 60,
                       "token": TimestampSigner::new(keyring.clone()).sign(UNICODE_VALUE).unwrap()}),
                json!(UNICODE_VALUE),
            ),
            (
                json!({"op": "unsign_object",
                       "token": Signer::new(keyring.clone()).sign_object(&JsonText(LIST_JSON), true).unwrap()}),
                serde_json::from_str(LIST_JSON).unwrap(),
            ),
            (
                json!({"op": "loads", "max_age": 60,
                       "token": TimestampSigner::for_dumps(keyring.clone()).sign_object(&object, false).unwrap()}),
                object.clone(),
            ),
            (
                json!({"op": "loads", "salt": "my.app",
                       "token": keyroll_django::dumps(&keyring, &JsonText(REPETITIVE_JSON), Some("my.app"), true).unwrap()}),
                serde_json::from_str(REPETITIVE_JSON).unwrap(),
            ),
            (
                json!({"op": "get_cookie", "name": "prefs", "salt": "ui", "max_age": 60,
                       "token": CookieSigner::builder(keyring.clone(), "prefs").salt("ui").build().sign("lang=de").unwrap()}),
                json!("lang=de"),
            ),
            (
                json!({"op": "session_load",
                       "token": SignedCookieSessions::new(keyring.clone()).save(&session).unwrap()}),
                session.clone(),
            ),
        ];
        for (django_op, value) in cases {
            ops.push(op(&django_keys, None, django_op.clone()));
            expected.push((django_op, value));
        }
    }
    let Some(results) = django(&ops) else { return };
    for ((django_op, value), result) in expected.iter().zip(&results) {
        assert_eq!(ok(result), value, "{django_op}");
    }
}

/// A value signed an hour ago passes a two-hour `max_age` and fails a
/// one-minute one, in both directions, and an expired cookie does not fall
/// back to the legacy salt.
#[test]
fn expiry_is_enforced_both_ways() {
    let main = main_keys();
    let keyring = main.keyring();
    let ops = vec![
        op(&main, Some(T - 3600), json!({"op": "dumps", "json": OBJECT_JSON})),
        op(
            &main,
            Some(T - 3600),
            json!({"op": "set_cookie", "name": "theme", "value": "dark"}),
        ),
        op(&main, Some(T - 3600), json!({"op": "ts_sign", "value": "hello"})),
    ];
    let rust_old = TimestampSigner::builder(keyring.clone())
        .clock(hour_before_t)
        .build()
        .unwrap()
        .sign("hello")
        .unwrap();
    let rust_old_dumps = TimestampSigner::builder(keyring.clone())
        .salt(DUMPS_SALT)
        .clock(hour_before_t)
        .build()
        .unwrap()
        .sign_object(&json!({"a": 1}), false)
        .unwrap();
    let rust_old_cookie = CookieSigner::builder(keyring.clone(), "theme")
        .clock(hour_before_t)
        .build()
        .sign("dark")
        .unwrap();
    let mut ops = ops;
    for max_age in [60, 7200] {
        ops.push(op(
            &main,
            Some(T),
            json!({"op": "ts_unsign", "token": rust_old, "max_age": max_age}),
        ));
        ops.push(op(
            &main,
            Some(T),
            json!({"op": "loads", "token": rust_old_dumps, "max_age": max_age}),
        ));
    }
    // Django's request.get_signed_cookie reads time.time() from the real
    // clock through signing.time: frozen at T here as well.
    ops.push(op(
        &main,
        Some(T),
        json!({"op": "get_cookie", "name": "theme", "token": rust_old_cookie, "max_age": 60}),
    ));
    let Some(results) = django(&ops) else { return };

    let dumps = TimestampSigner::builder(keyring.clone())
        .salt(DUMPS_SALT)
        .clock(at_t)
        .build()
        .unwrap();
    let cookie = CookieSigner::builder(keyring.clone(), "theme")
        .clock(at_t)
        .build();
    let timestamped = TimestampSigner::builder(keyring).clock(at_t).build().unwrap();
    let (minute, two_hours) = (Some(Duration::from_secs(60)), Some(Duration::from_secs(7200)));

    let expired = Error::SignatureExpired {
        age: Duration::from_secs(3600),
        max_age: Duration::from_secs(60),
    };
    assert_eq!(
        dumps
            .verify_object::<Value>(ok_str(&results[0]), minute)
            .unwrap_err(),
        expired
    );
    assert!(
        dumps
            .verify_object::<Value>(ok_str(&results[0]), two_hours)
            .is_ok()
    );
    assert_eq!(cookie.verify(ok_str(&results[1]), minute).unwrap_err(), expired);
    assert_eq!(
        cookie.verify(ok_str(&results[1]), two_hours).unwrap().value,
        "dark"
    );
    assert_eq!(
        timestamped.verify(ok_str(&results[2]), minute).unwrap_err(),
        expired
    );
    assert_eq!(
        timestamped.verify(ok_str(&results[2]), None).unwrap().timestamp,
        Some(hour_before_t())
    );

    assert_eq!(raised(&results[3]), "SignatureExpired");
    assert_eq!(raised(&results[4]), "SignatureExpired");
    assert_eq!(ok(&results[5]), "hello");
    assert_eq!(ok(&results[6]), &json!({"a": 1}));
    assert_eq!(raised(&results[7]), "SignatureExpired");
}

/// Changed values, foreign keys and wrong salts are refused in both directions.
#[test]
fn tampering_is_refused_both_ways() {
    let main = main_keys();
    let stranger = Keys::text(&["a-key-nobody-in-this-deployment-knows-0000000000"]);
    let keyring = main.keyring();
    let signer = Signer::new(keyring.clone());
    let dumps = TimestampSigner::for_dumps(keyring.clone());
    let rust_signed = signer.sign("amount=10").unwrap();
    let rust_dumped = dumps.sign_object(&JsonText(REPETITIVE_JSON), true).unwrap();
    assert!(rust_dumped.starts_with('.'), "compressed");
    let tampered_rust = [
        rust_signed.replace("10", "99"),
        format!("{}A", rust_signed),
        rust_signed.replacen(':', "", 1),
        Signer::new(stranger.keyring()).sign("amount=10").unwrap(),
        Signer::builder(keyring.clone())
            .salt("other")
            .build()
            .unwrap()
            .sign("amount=10")
            .unwrap(),
    ];
    let mut ops: Vec<Value> = tampered_rust
        .iter()
        .map(|token| op(&main, None, json!({"op": "unsign", "token": token})))
        .collect();
    ops.push(op(
        &main,
        None,
        json!({"op": "loads", "token": rust_dumped.replacen('.', "", 1)}),
    ));
    ops.push(op(
        &main,
        None,
        json!({"op": "loads", "token": format!("{}x", rust_dumped)}),
    ));
    // Django-made values to tamper with on the Rust side.
    ops.push(op(&main, None, json!({"op": "sign", "value": "amount=10"})));
    ops.push(op(&stranger, None, json!({"op": "sign", "value": "amount=10"})));
    ops.push(op(
        &main,
        None,
        json!({"op": "dumps", "json": OBJECT_JSON, "compress": true}),
    ));
    let Some(results) = django(&ops) else { return };

    for (token, result) in tampered_rust.iter().zip(&results) {
        assert_eq!(raised(result), "BadSignature", "{token}");
    }
    assert_eq!(raised(&results[5]), "BadSignature");
    assert_eq!(raised(&results[6]), "BadSignature");

    let django_signed = ok_str(&results[7]);
    assert_eq!(signer.verify(django_signed).unwrap().value, "amount=10");
    for token in [
        django_signed.replace("10", "99"),
        django_signed.to_uppercase(),
        django_signed.replace(':', ""),
        ok_str(&results[8]).to_owned(),
    ] {
        assert!(signer.verify(&token).unwrap_err().is_bad_signature(), "{token}");
    }
    let django_dumped = ok_str(&results[9]);
    assert!(dumps.verify_object::<Value>(django_dumped, None).is_ok());
    let unmarked = django_dumped.replacen('.', "", 1);
    assert_eq!(
        dumps.verify_object::<Value>(&unmarked, None).unwrap_err(),
        Error::BadSignature
    );
}

/// A compressed payload from Django that inflates past the bound is refused
/// (and accepted once the bound allows it).
#[test]
fn zip_bomb_from_django_is_bounded() {
    let main = main_keys();
    let ops = [op(
        &main,
        None,
        json!({"op": "dumps_repeated", "text": "a", "count": 2_000_000}),
    )];
    let Some(results) = django(&ops) else { return };
    let token = ok_str(&results[0]);
    assert!(
        token.len() < 10_000,
        "two million bytes compress to a small token"
    );
    let default = TimestampSigner::for_dumps(main.keyring());
    assert_eq!(
        default.verify_object::<Value>(token, None).unwrap_err(),
        Error::Encoding(PayloadError::TooLarge { limit: 1 << 20 })
    );
    let generous = TimestampSigner::builder(main.keyring())
        .salt(DUMPS_SALT)
        .max_decompressed_size(4 << 20)
        .build()
        .unwrap();
    let value: String = generous.verify_object(token, None).unwrap().value;
    assert_eq!(value.len(), 2_000_000);
}
