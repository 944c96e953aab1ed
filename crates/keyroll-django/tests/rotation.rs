//! keyroll behaviour around Django's format: which key matched, key-set
//! changes, legacy algorithms, separators, bounds and redaction.

mod common;

use std::time::{Duration, SystemTime};

use common::{at, keyring, single};
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Role};
use keyroll_django::PayloadError;
use keyroll_django::cookie::{cookie_salt, legacy_cookie_salt};
use keyroll_django::{
    Algorithm, ConfigError, CookieSigner, DUMPS_SALT, Error, SignedCookieSessions, Signer, TimestampSigner,
};
use serde_json::{Value, json};

#[test]
fn verification_reports_the_matching_key_and_role() {
    let old = Signer::new(single("key-two")).sign("v").unwrap();
    let older = Signer::new(single("key-three")).sign("v").unwrap();
    let signer = Signer::new(keyring(b"key-one", &[b"key-two", b"key-three"]));
    let signed = signer.sign("v").unwrap();
    let current = signer.verify(&signed).unwrap();
    assert_eq!(
        (&*current.key.id, current.key.role, current.needs_resign()),
        ("current", Role::Current, false)
    );
    let fallback = signer.verify(&old).unwrap();
    assert_eq!(
        (&*fallback.key.id, fallback.key.role, fallback.needs_resign()),
        ("fallback-1", Role::Fallback, true)
    );
    assert_eq!(&*signer.verify(&older).unwrap().key.id, "fallback-2");
}

#[test]
fn pending_key_verifies_but_does_not_sign() {
    let now = SystemTime::now();
    let pending = KeyEntry::new(
        "next",
        KeyMaterial::from("next-key"),
        Some(now + Duration::from_secs(3600)),
        None,
        None,
    );
    let current = KeyEntry::new("now", KeyMaterial::from("now-key"), Some(at(0)), None, None);
    let signer = Signer::new(Keyring::new(
        KeySet::with_strength(
            vec![pending, current],
            now,
            &keyroll_core::KeyStrength::any_non_empty(),
        )
        .unwrap(),
    ));
    assert_eq!(
        signer.sign("v").unwrap(),
        Signer::new(single("now-key")).sign("v").unwrap()
    );
    let signed_early = Signer::new(single("next-key")).sign("v").unwrap();
    let early = signer.verify(&signed_early).unwrap();
    assert_eq!((&*early.key.id, early.key.role), ("next", Role::Pending));
}

#[test]
fn a_new_key_set_takes_effect_without_rebuilding_the_signer() {
    let keys = single("first-key");
    let signer = Signer::new(keys.clone());
    let before = signer.sign("v").unwrap();
    let first = KeyEntry::new(
        "first",
        KeyMaterial::from("first-key"),
        Some(at(0)),
        Some(at(1)),
        None,
    );
    let second = KeyEntry::new("second", KeyMaterial::from("second-key"), Some(at(1)), None, None);
    keys.install(
        KeySet::with_strength(
            vec![second, first],
            SystemTime::now(),
            &keyroll_core::KeyStrength::any_non_empty(),
        )
        .unwrap(),
    );
    let after = signer.sign("v").unwrap();
    assert_eq!(after, Signer::new(single("second-key")).sign("v").unwrap());
    assert_eq!(signer.verify(&before).unwrap().key.role, Role::Fallback);
    assert_eq!(signer.verify(&after).unwrap().key.role, Role::Current);
}

#[test]
fn retired_keys_verify_nothing() {
    let old = Signer::new(single("retired-key")).sign("v").unwrap();
    let retired = KeyEntry::new(
        "retired",
        KeyMaterial::from("retired-key"),
        Some(at(0)),
        Some(at(1)),
        Some(at(2)),
    );
    let current = KeyEntry::new(
        "current",
        KeyMaterial::from("current-key"),
        Some(at(1)),
        None,
        None,
    );
    let signer = Signer::new(Keyring::new(
        KeySet::with_strength(
            vec![current, retired],
            SystemTime::now(),
            &keyroll_core::KeyStrength::any_non_empty(),
        )
        .unwrap(),
    ));
    assert_eq!(signer.verify(&old).unwrap_err(), Error::BadSignature);
}

#[test]
fn legacy_algorithms_verify_only_when_accepted() {
    let sha1 = Signer::builder(single("k"))
        .algorithm(Algorithm::Sha1)
        .build()
        .unwrap()
        .sign("v")
        .unwrap();
    let sha512 = Signer::builder(single("k"))
        .algorithm(Algorithm::Sha512)
        .build()
        .unwrap()
        .sign("v")
        .unwrap();
    let strict = Signer::new(single("k"));
    assert_eq!(strict.verify(&sha1).unwrap_err(), Error::BadSignature);
    assert_eq!(strict.verify(&sha512).unwrap_err(), Error::BadSignature);
    let lenient = Signer::builder(single("k"))
        .accept_legacy(Algorithm::Sha1)
        .build()
        .unwrap();
    assert_eq!(lenient.verify(&sha1).unwrap().value, "v");
    assert_eq!(lenient.verify(&sha512).unwrap_err(), Error::BadSignature);
    assert_eq!(
        lenient.sign("v").unwrap(),
        strict.sign("v").unwrap(),
        "legacy algorithms never sign"
    );
}

#[test]
fn separators_follow_djangos_unsafe_rule() {
    for unsafe_separator in ["", "-", "abc", "=", "_", "[", "`", "^", "\n", "a\n", "Z9"] {
        assert_eq!(
            Signer::builder(single("k"))
                .separator(unsafe_separator)
                .build()
                .unwrap_err(),
            ConfigError::UnsafeSeparator(unsafe_separator.into()),
            "{unsafe_separator:?}"
        );
    }
    for safe in [":", "/", ",", ".", "|", "~", "{", "a\n\n", "é", "a:b"] {
        assert!(
            Signer::builder(single("k")).separator(safe).build().is_ok(),
            "{safe:?}"
        );
    }
}

#[test]
fn value_without_separator_is_reported_as_such() {
    let error = Signer::new(single("k")).verify("no-separator-here").unwrap_err();
    assert_eq!(
        error,
        Error::MissingSeparator {
            separator: ":".into()
        }
    );
    assert!(error.is_bad_signature());
}

#[test]
fn timestamp_signer_refuses_plain_signer_values_with_the_same_salt() {
    let plain = Signer::builder(single("k"))
        .salt("shared")
        .build()
        .unwrap()
        .sign("no-timestamp")
        .unwrap();
    let timestamped = TimestampSigner::builder(single("k"))
        .salt("shared")
        .build()
        .unwrap();
    assert_eq!(timestamped.verify(&plain, None).unwrap_err(), Error::BadTimestamp);
}

#[test]
fn future_timestamps_pass_as_in_django() {
    let keys = single("k");
    let future = TimestampSigner::builder(keys.clone())
        .clock(|| at(2_000_000_000))
        .build()
        .unwrap()
        .sign("v")
        .unwrap();
    let now = TimestampSigner::builder(keys)
        .clock(|| at(1_000_000_000))
        .build()
        .unwrap();
    let verified = now.verify(&future, Some(Duration::from_secs(1))).unwrap();
    assert_eq!(verified.timestamp, Some(at(2_000_000_000)));
}

#[test]
fn compressed_payload_is_bounded_even_with_a_valid_signature() {
    let keys = single("k");
    let bomb = "0".repeat(300_000);
    let token = TimestampSigner::for_dumps(keys.clone())
        .sign_object(&bomb, true)
        .unwrap();
    assert!(token.starts_with('.') && token.len() < 2_000);
    let bounded = TimestampSigner::builder(keys.clone())
        .salt(DUMPS_SALT)
        .max_decompressed_size(100_000)
        .build()
        .unwrap();
    assert_eq!(
        bounded.verify_object::<String>(&token, None).unwrap_err(),
        Error::Encoding(PayloadError::TooLarge { limit: 100_000 })
    );
    assert_eq!(
        TimestampSigner::for_dumps(keys)
            .verify_object::<String>(&token, None)
            .unwrap()
            .value,
        bomb
    );
}

#[test]
fn cookie_salt_v2_separates_names_that_legacy_salts_confuse() {
    assert_eq!(legacy_cookie_salt("ab", "c"), legacy_cookie_salt("a", "bc"));
    assert_ne!(cookie_salt("ab", "c"), cookie_salt("a", "bc"));
    assert_eq!(
        cookie_salt("n", "sälz"),
        "django.http.cookies.v2:4:sälzn",
        "length counts characters"
    );
    let keys = single("k");
    let set = CookieSigner::builder(keys.clone(), "ab")
        .salt("c")
        .build()
        .sign("v")
        .unwrap();
    let other = CookieSigner::builder(keys.clone(), "a")
        .salt("bc")
        .legacy_salt_fallback(false)
        .build();
    assert_eq!(other.verify(&set, None).unwrap_err(), Error::BadSignature);
}

#[test]
fn cookies_are_keyed_apart_from_plain_signing() {
    // Django prefixes cookie keys with "django.http.cookies": a TimestampSigner
    // with the cookie's salt but the bare key does not verify the cookie.
    let keys = single("k");
    let cookie = CookieSigner::new(keys.clone(), "theme").sign("dark").unwrap();
    let bare = TimestampSigner::builder(keys)
        .salt(cookie_salt("theme", ""))
        .build()
        .unwrap();
    assert_eq!(bare.verify(&cookie, None).unwrap_err(), Error::BadSignature);
}

#[test]
fn session_cookies_expire_after_the_session_age() {
    let keys = single("k");
    let cookie = SignedCookieSessions::with_clock(keys.clone(), || at(1_000_000))
        .save(&json!({"a": 1}))
        .unwrap();
    let two_weeks_later = SignedCookieSessions::with_clock(keys.clone(), || at(1_000_000 + 1_209_600));
    assert_eq!(two_weeks_later.load(&cookie).unwrap().value["a"], 1);
    let one_second_more = SignedCookieSessions::with_clock(keys.clone(), || at(1_000_000 + 1_209_601));
    assert!(one_second_more.load(&cookie).unwrap_err().is_expired());
    let shorter =
        SignedCookieSessions::with_clock(keys, || at(1_000_000 + 61)).with_max_age(Duration::from_secs(60));
    assert!(shorter.load(&cookie).unwrap_err().is_expired());
}

#[test]
fn objects_that_are_not_json_are_refused_after_the_signature_check() {
    let keys = single("k");
    let raw = TimestampSigner::builder(keys.clone())
        .salt(DUMPS_SALT)
        .build()
        .unwrap();
    let dumps = TimestampSigner::for_dumps(keys);
    let not_json = raw.sign("bm90IGpzb24"); // base64url of "not json"
    assert_eq!(
        dumps
            .verify_object::<Value>(&not_json.unwrap(), None)
            .unwrap_err(),
        Error::Payload { what: "JSON" }
    );
    let not_zlib = raw.sign(".bm90IHpsaWI").unwrap();
    assert_eq!(
        dumps.verify_object::<Value>(&not_zlib, None).unwrap_err(),
        Error::Encoding(PayloadError::Zlib)
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let keys = keyring(
        b"super-secret-material-1234567890",
        &[b"older-secret-material-0987654321"],
    );
    let shown = format!(
        "{:?} {:?} {:?} {:?}",
        Signer::new(keys.clone()),
        TimestampSigner::builder(keys.clone()),
        CookieSigner::new(keys.clone(), "c"),
        SignedCookieSessions::new(keys)
    );
    assert!(!shown.contains("secret-material"), "{shown}");
    assert!(shown.contains("django.core.signing.Signer"));
}
