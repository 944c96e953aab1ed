//! What keyroll-flask reads and refuses: tagged values, malformed, tampered
//! and oversized cookies, each a typed error.

mod common;

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{CURRENT, NEWER, OLDER, RETIRED, T, at, at_t, only, rotated};
use keyroll_core::Role;
use keyroll_core::kit::Rejection;
use keyroll_flask::{Error, SecureCookieSessions, Value};
use keyroll_flask::{PayloadError, Unserved};
use time::macros::datetime;

fn sessions() -> SecureCookieSessions {
    SecureCookieSessions::builder(rotated()).clock(at_t).build()
}

/// `payload.timestamp` signed the way Flask signs it with the current key,
/// whatever the payload: what a key holder with other settings could send.
fn signed(payload: &str) -> String {
    let stamped = format!("{payload}.{}", B64.encode(T.to_be_bytes().trim_ascii_start()));
    resign(&stamped)
}

fn resign(stamped: &str) -> String {
    // Sign through the library: a cookie of the same stamped text made by
    // a session whose JSON we control is not possible, so go one level down
    // with an independent HMAC-SHA1 chain (itsdangerous' "hmac" derivation).
    use hmac::{Hmac, Mac};
    use sha1::Sha1;
    let mut derive = <Hmac<Sha1> as Mac>::new_from_slice(CURRENT.as_bytes()).unwrap();
    derive.update(b"cookie-session");
    let key = derive.finalize().into_bytes();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&key).unwrap();
    mac.update(stamped.as_bytes());
    format!("{stamped}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn load(cookie: &str) -> Result<Value, Error> {
    sessions().load(cookie).map(|verified| verified.value)
}

#[test]
fn every_tag_round_trips() {
    let value = Value::dict([
        ("tuple", Value::Tuple(vec![Value::from(1), Value::from("a")])),
        ("bytes", Value::Bytes(vec![0, 255, 128])),
        ("markup", Value::Markup("<b>bold</b>".into())),
        (
            "uuid",
            Value::Uuid(*b"\x12\x34\x56\x78\x12\x34\x56\x78\x12\x34\x56\x78\x12\x34\x56\x78"),
        ),
        ("when", Value::DateTime(datetime!(2015-10-21 07:28:00 UTC))),
        (
            "list",
            Value::List(vec![Value::Null, Value::Bool(true), Value::Tuple(vec![])]),
        ),
        ("escaped", Value::dict([(" t", Value::from("not a tuple"))])),
    ]);
    let json = value.to_tagged_json().unwrap();
    assert_eq!(
        json,
        r#"{"bytes":{" b":"AP+A"},"escaped":{" di":{" t__":"not a tuple"}},"list":[null,true,{" t":[]}],"markup":{" m":"<b>bold</b>"},"tuple":{" t":[1,"a"]},"uuid":{" u":"12345678123456781234567812345678"},"when":{" d":"Wed, 21 Oct 2015 07:28:00 GMT"}}"#
    );
    assert_eq!(Value::from_tagged_json(&json).unwrap(), value);
    let cookie = sessions().save(&value).unwrap();
    let loaded = sessions().load(&cookie).unwrap();
    assert_eq!(loaded.value, value);
    assert_eq!(
        (&*loaded.key.id, loaded.key.role, loaded.timestamp),
        ("current", Role::Current, Some(at_t()))
    );
}

#[test]
fn python_readings_of_tags_are_followed() {
    // uuid.UUID accepts hyphens, braces and a urn prefix; Flask writes plain hex.
    let uuid =
        Value::from_tagged_json(r#"{" u":"urn:uuid:{12345678-1234-5678-1234-567812345678}"}"#).unwrap();
    assert_eq!(
        uuid.to_tagged_json().unwrap(),
        r#"{" u":"12345678123456781234567812345678"}"#
    );
    // email.utils.parsedate: years below 100 are two-digit years.
    for (text, year) in [("0005", 2005), ("0068", 2068), ("0069", 1969), ("0100", 100)] {
        let json = format!(r#"{{" d":"Sat, 01 Jan {text} 00:00:00 GMT"}}"#);
        let Value::DateTime(at) = Value::from_tagged_json(&json).unwrap() else {
            panic!("not a datetime");
        };
        assert_eq!(at.year(), year, "{text}");
    }
    // Other time zones are written in UTC, to the second.
    let berlin = Value::DateTime(datetime!(2015-10-21 09:28:00.75 +02:00));
    assert_eq!(
        berlin.to_tagged_json().unwrap(),
        r#"{" d":"Wed, 21 Oct 2015 07:28:00 GMT"}"#
    );
    assert!(matches!(
        Value::DateTime(datetime!(-0001-01-01 00:00 UTC)).to_tagged_json(),
        Err(Error::Serialize(_))
    ));
    // Plain JSON interprets no tag.
    let plain = Value::from(serde_json::json!({" t": [1]}));
    assert_eq!(plain.to_tagged_json().unwrap(), r#"{" di":{" t__":[1]}}"#);
}

#[test]
fn bad_tagged_values_are_typed_errors() {
    for (json, tag) in [
        (r#"{" t":"x"}"#, " t"),
        (r#"{" b":"***"}"#, " b"),
        (r#"{" b":1}"#, " b"),
        (r#"{" m":[]}"#, " m"),
        (r#"{" u":"12"}"#, " u"),
        (r#"{" u":"1234567812345678123456781234567g"}"#, " u"),
        (r#"{" u":"ééééééééééééééééé"}"#, " u"),
        (r#"{" d":"yesterday"}"#, " d"),
        (r#"{" d":"Wed, 32 Oct 2015 07:28:00 GMT"}"#, " d"),
        (r#"{" di":"x"}"#, " di"),
        (r#"{" di":{"a__":1,"b__":2}}"#, " di"),
    ] {
        let error = Value::from_tagged_json(json).unwrap_err();
        assert!(
            matches!(error, Error::Tag { tag: t, .. } if t == tag),
            "{json}: {error:?}"
        );
        assert!(!error.is_bad_signature());
        let error = load(&signed(&B64.encode(json))).unwrap_err();
        assert!(matches!(error, Error::Tag { .. }), "{json}: {error:?}");
    }
    // A one-key dict whose key is not a tag is a dict.
    assert!(matches!(
        Value::from_tagged_json(r#"{" x":1}"#).unwrap(),
        Value::Dict(_)
    ));
}

#[test]
fn fallback_cookies_verify_and_ask_for_a_new_cookie_retired_ones_do_not() {
    let value = Value::dict([("user_id", Value::from(7))]);
    for (id, key, expected) in [("n", NEWER, "newer-fallback"), ("o", OLDER, "older-fallback")] {
        let cookie = SecureCookieSessions::builder(only(id, key))
            .clock(at_t)
            .build()
            .save(&value)
            .unwrap();
        let loaded = sessions().load(&cookie).unwrap();
        assert_eq!((&*loaded.key.id, loaded.key.role), (expected, Role::Fallback));
        assert!(loaded.needs_resign());
    }
    let retired = SecureCookieSessions::builder(only("r", RETIRED))
        .clock(at_t)
        .build();
    assert_eq!(
        load(&retired.save(&value).unwrap()).unwrap_err(),
        Error::BadSignature
    );
    let other_salt = SecureCookieSessions::builder(rotated())
        .salt("other")
        .clock(at_t)
        .build();
    assert_eq!(
        load(&other_salt.save(&value).unwrap()).unwrap_err(),
        Error::BadSignature
    );
}

#[test]
fn malformed_truncated_and_tampered_cookies_are_typed_errors() {
    let cookie = sessions()
        .save(&Value::dict([("user_id", Value::from(7))]))
        .unwrap();
    assert_eq!(load("").unwrap_err(), Error::MissingSeparator);
    assert_eq!(load("no-dot-at-all").unwrap_err(), Error::MissingSeparator);
    assert_eq!(load(".").unwrap_err(), Error::BadSignature);
    for end in 0..cookie.len() {
        let error = load(&cookie[..end]).unwrap_err();
        assert!(error.is_bad_signature(), "{end}: {error:?}");
    }
    for at in 0..cookie.len() {
        let mut bytes = cookie.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let error = load(&String::from_utf8(bytes).unwrap()).unwrap_err();
        assert!(error.is_bad_signature(), "byte {at}: {error:?}");
    }
    // Validly signed, but not what Flask writes.
    let (payload, _) = cookie.split_once('.').unwrap();
    assert_eq!(load(&resign(payload)).unwrap_err(), Error::BadTimestamp);
    assert_eq!(
        load(&resign(&format!("{payload}.!!"))).unwrap_err(),
        Error::BadTimestamp
    );
    assert_eq!(
        load(&resign(&format!("{payload}.{}", B64.encode([1u8; 9])))).unwrap_err(),
        Error::BadTimestamp
    );
    assert_eq!(
        load(&resign(&format!("{payload}.{}", B64.encode([255u8; 8])))).unwrap_err(),
        Error::BadTimestamp
    );
    assert_eq!(
        load(&signed("!!")).unwrap_err(),
        Error::Encoding(PayloadError::Base64)
    );
    assert_eq!(
        load(&signed(".!!")).unwrap_err(),
        Error::Encoding(PayloadError::Base64)
    );
    assert_eq!(
        load(&signed(&format!(".{}", B64.encode("not zlib")))).unwrap_err(),
        Error::Encoding(PayloadError::Zlib)
    );
    assert_eq!(
        load(&signed(&B64.encode("{nope"))).unwrap_err(),
        Error::Payload { what: "JSON" }
    );
    assert_eq!(
        load(&signed(&B64.encode([0xff, 0xfe]))).unwrap_err(),
        Error::Payload { what: "JSON" }
    );
}

#[test]
fn decompression_is_bounded_like_the_django_reader() {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"[").unwrap();
    for _ in 0..(1 << 16) {
        encoder.write_all(b"0,0,0,0,0,0,0,0,").unwrap();
    }
    encoder.write_all(b"0]").unwrap();
    let bomb = format!(".{}", B64.encode(encoder.finish().unwrap()));
    assert_eq!(
        load(&signed(&bomb)).unwrap_err(),
        Error::Encoding(PayloadError::TooLarge { limit: 1 << 20 })
    );
    let roomy = SecureCookieSessions::builder(rotated())
        .clock(at_t)
        .max_decompressed_size(2 << 20)
        .build();
    assert!(roomy.load(&signed(&bomb)).is_ok());
    let tight = SecureCookieSessions::builder(rotated())
        .clock(at_t)
        .max_decompressed_size(10)
        .build();
    let cookie = tight
        .save(&Value::dict([("pad", Value::from("x".repeat(100)))]))
        .unwrap();
    assert!(cookie.starts_with('.'));
    assert_eq!(
        tight.load(&cookie).unwrap_err(),
        Error::Encoding(PayloadError::TooLarge { limit: 10 })
    );
}

#[test]
fn age_is_checked_against_the_session_lifetime() {
    let value = Value::dict([("user_id", Value::from(7))]);
    let cookie = sessions().save(&value).unwrap();
    let last_second = SecureCookieSessions::builder(rotated())
        .clock(|| at(T + 31 * 24 * 3600))
        .build();
    assert!(last_second.load(&cookie).is_ok());
    let past = SecureCookieSessions::builder(rotated())
        .clock(|| at(T + 31 * 24 * 3600 + 1))
        .build();
    let error = past.load(&cookie).unwrap_err();
    assert!(error.is_expired() && error.is_bad_signature(), "{error:?}");
    let short = SecureCookieSessions::builder(rotated())
        .clock(|| at(T + 11))
        .max_age(Duration::from_secs(10))
        .build();
    assert_eq!(
        short.load(&cookie).unwrap_err(),
        Error::Expired {
            age: Duration::from_secs(11),
            max_age: Duration::from_secs(10)
        }
    );
}

#[test]
fn debug_and_errors_never_show_key_material() {
    let sessions = sessions();
    let cookie = sessions
        .save(&Value::dict([("user_id", Value::from(7))]))
        .unwrap();
    let mut texts = vec![format!("{sessions:?}"), format!("{:?}", sessions.load(&cookie))];
    for bad in ["x", &cookie[1..], &format!("{cookie}A")] {
        let error = sessions.load(bad).unwrap_err();
        texts.push(format!("{error} {error:?}"));
    }
    for text in texts {
        for secret in [CURRENT, NEWER, OLDER] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

#[test]
fn a_retired_key_is_refused_at_once_even_without_a_refresher() {
    use std::time::SystemTime;

    use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};

    // System clock, no refresher to install a new generation: roles come from
    // the generation's snapshot until its next transition, then exactly.
    let now = SystemTime::now();
    let until = now + Duration::from_millis(50);
    let epoch = std::time::UNIX_EPOCH;
    let keyring = Keyring::new(
        KeySet::new(
            vec![
                KeyEntry::new("current", KeyMaterial::from(CURRENT), Some(epoch), None, None),
                KeyEntry::new(
                    "newer-fallback",
                    KeyMaterial::from(NEWER),
                    Some(epoch),
                    Some(epoch),
                    Some(until),
                ),
            ],
            now,
        )
        .unwrap(),
    );
    let sessions = SecureCookieSessions::new(keyring.clone());
    let value = Value::dict([("user_id", Value::from(42))]);
    let cookie = SecureCookieSessions::new(only("old", NEWER))
        .save(&value)
        .unwrap();
    let verified = sessions.load(&cookie).unwrap();
    assert_eq!(verified.value, value);
    assert_eq!(
        (&*verified.key.id, verified.key.role),
        ("newer-fallback", Role::Fallback)
    );
    while SystemTime::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(matches!(sessions.load(&cookie), Err(Error::BadSignature)));
    assert_eq!(keyring.generation(), 1, "no new generation was installed");
}

/// The one rule of every format's sign (`Keyring::signing_position`): nothing is
/// signed once the key that would sign is past its expiry.
#[test]
fn nothing_is_saved_once_the_only_key_is_past_its_expiry() {
    use keyroll_core::{Closed, KeyEntry, KeyMaterial, KeySet, Keyring};
    let expired_at = at(T - 60);
    let only = KeyEntry::new(
        "only",
        KeyMaterial::from(CURRENT),
        Some(at(0)),
        Some(expired_at),
        Some(expired_at),
    );
    let keyring = Keyring::new(KeySet::new(vec![only], at(T - 120)).unwrap());
    let sessions = SecureCookieSessions::builder(keyring).clock(at_t).build();
    let value = Value::from_tagged_json(r#"{"user":42}"#).unwrap();
    let unsaved = sessions.save(&value).unwrap_err();
    assert_eq!(unsaved, Error::Keys(Unserved::Closed(Closed::Expired)));
    // Python and Node raise `FailedClosed` for it, as for a refused cookie.
    assert_eq!(unsaved.rejection(), Some(Rejection::Stale));
}
