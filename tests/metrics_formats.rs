//! Rejections of every format and re-issued cookies, counted once each,
//! through the `metrics` facade (a Prometheus recorder local to the test).

use std::time::SystemTime;

use keyroll::axum::tower_cookies::{Cookie, Cookies};
use keyroll::axum::{CookieKeys, SignedCookies};
use keyroll::django::{CookieSigner, Signer as DjangoSigner, TimestampSigner};
use keyroll::fernet::{Derive, Encrypter};
use keyroll::{KeyEntry, KeyMaterial, KeySet, Keyring, Signer};
use metrics_exporter_prometheus::PrometheusBuilder;

const FIRST: &str = "metrics-formats-first-key-3b7e1a9c5d2f8e4a6c0b9d1e7f3a5c2b";
const SECOND: &str = "metrics-formats-second-key-9d4c2e7a1b5f3e8c6a0d2b4f9e1c7a3d";

fn only_first() -> KeySet {
    KeySet::single("first", KeyMaterial::from(FIRST)).unwrap()
}

/// `second` signs; `first` verifies as a fallback.
fn rotated() -> KeySet {
    let epoch = SystemTime::UNIX_EPOCH;
    KeySet::new(
        vec![
            KeyEntry::new("second", KeyMaterial::from(SECOND), Some(epoch), None, None),
            KeyEntry::new("first", KeyMaterial::from(FIRST), Some(epoch), Some(epoch), None),
        ],
        SystemTime::now(),
    )
    .unwrap()
}

/// The value of the series `name` whose labels are exactly `labels`, in order.
fn value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(",");
    let series = format!("{name}{{{labels}}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
}

#[test]
fn every_format_counts_each_refused_token_once_and_each_reissue() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let keyring = Keyring::new(only_first());
    let rejection = |format: &str, reason: &str| {
        value(
            &handle.render(),
            "keyroll_rejections_total",
            &[("format", format), ("reason", reason)],
        )
    };
    metrics::with_local_recorder(&recorder, || {
        // Native: a token that does not parse, and a verified token whose
        // payload is not the JSON asked for (counted by verify_value alone).
        let native = Signer::new(keyring.clone());
        assert!(native.verify("not a token").is_err());
        assert!(native.verify_value::<u32>(&native.sign("text").unwrap()).is_err());

        // Django: verify_object and the session call verify's check once;
        // a cookie only the legacy salt verifies is not refused.
        let django = DjangoSigner::new(keyring.clone());
        assert!(django.verify("no separator").is_err());
        assert!(django.verify_object::<u32>("e30:AAAA").is_err());
        let cookies = CookieSigner::new(keyring.clone(), "theme");
        // Django signs cookies with the key prefixed (`_cookie_signer_key`);
        // before CVE-2026-6873 the salt was the cookie's name.
        let prefixed = format!("django.http.cookies{FIRST}");
        let prefixed = Keyring::new(KeySet::single("first", KeyMaterial::from(prefixed)).unwrap());
        let legacy = TimestampSigner::builder(prefixed)
            .salt(keyroll::django::cookie::legacy_cookie_salt("theme", ""))
            .build()
            .unwrap();
        assert!(
            cookies
                .verify(&legacy.sign("dark").unwrap(), None)
                .unwrap()
                .legacy_salt
        );
        assert!(cookies.verify("dark:1r31eq:AAAA", None).is_err());

        // Fernet, JWT, Flask.
        let fernet = Encrypter::new(keyring.clone(), Derive::Hkdf).unwrap();
        assert!(fernet.decrypt("not a token", None).is_err());
        assert!(fernet.rotate("not a token").is_err());
        let jwt = keyroll::jwt::Signer::new(keyring.clone());
        assert!(jwt.verify::<serde_json::Value>("not.a.token").is_err());
        let flask = keyroll::flask::SecureCookieSessions::new(keyring.clone());
        assert!(flask.load("no separator").is_err());

        // A signed cookie of the first key, read once the second signs: set
        // again with the current key, and counted.
        let keys = CookieKeys::builder(keyring.clone()).build().unwrap();
        let old = keys.sign("session", "user=42").unwrap();
        keyring.install(rotated());
        let jar = Cookies::default();
        jar.add(Cookie::new("session", old.clone()));
        let read = SignedCookies::new(jar.clone(), keys.clone())
            .get("session")
            .unwrap();
        assert_eq!(&*read.key.id, "first");
        assert_ne!(jar.get("session").unwrap().value(), old, "re-issued");
    });

    assert_eq!(rejection("native", "malformed"), Some(1.0));
    assert_eq!(rejection("native", "payload"), Some(1.0));
    assert_eq!(rejection("django", "missing_separator"), Some(1.0));
    assert_eq!(
        rejection("django", "bad_signature"),
        Some(2.0),
        "verify_object once, the cookie once (not once per salt)"
    );
    assert_eq!(rejection("fernet", "malformed"), Some(2.0), "decrypt and rotate");
    assert_eq!(rejection("jwt", "malformed"), Some(1.0));
    assert_eq!(rejection("flask", "missing_separator"), Some(1.0));
    let body = handle.render();
    assert_eq!(
        value(&body, "keyroll_cookies_reissued_total", &[("kind", "signed")]),
        Some(1.0),
        "{body}"
    );
    let refused: f64 = body
        .lines()
        .filter(|line| line.starts_with("keyroll_rejections_total{"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(refused, 9.0, "no other refusal was counted: {body}");
}
