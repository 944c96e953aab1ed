//! Django's own `tests/signing/tests.py` (REFERENCES.md §1.6), ported case by
//! case. Django's explicit `key=`/`fallback_keys=` become key rings.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{at, keyring, single};
use hmac::{Hmac, Mac};
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};
use keyroll_django::{
    Algorithm, ConfigError, DUMPS_SALT, Error, SIGNER_SALT, Signer, TimestampSigner, base62,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Django's `base64_hmac(salt, value, key, algorithm="sha256")`, written out.
fn base64_hmac(salt: &str, value: &[u8], key: &[u8]) -> String {
    let derived = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(key)
        .finalize();
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(&derived)
        .unwrap()
        .chain_update(value)
        .finalize();
    B64.encode(mac.into_bytes())
}

/// The signature part of `value:signature`.
fn signature_of(signer: &Signer, value: &str) -> String {
    let signed = signer.sign(value).unwrap();
    signed.rsplit_once(':').unwrap().1.to_owned()
}

// ---- TestSigner ----

#[test]
fn test_signature() {
    let signer = Signer::new(single("predictable-secret"));
    for value in ["hello", "3098247:529:087:", "\u{2019}"] {
        assert_eq!(
            signature_of(&signer, value),
            base64_hmac(
                &format!("{SIGNER_SALT}signer"),
                value.as_bytes(),
                b"predictable-secret"
            )
        );
    }
    let other = Signer::new(single("predictable-secret2"));
    assert_ne!(signature_of(&signer, "hello"), signature_of(&other, "hello"));
}

#[test]
fn test_signature_with_salt() {
    let signer = Signer::builder(single("predictable-secret"))
        .salt("extra-salt")
        .build()
        .unwrap();
    assert_eq!(
        signature_of(&signer, "hello"),
        base64_hmac("extra-saltsigner", b"hello", b"predictable-secret")
    );
    let one = Signer::builder(single("predictable-secret"))
        .salt("one")
        .build()
        .unwrap();
    let two = Signer::builder(single("predictable-secret"))
        .salt("two")
        .build()
        .unwrap();
    assert_ne!(signature_of(&one, "hello"), signature_of(&two, "hello"));
}

#[test]
fn test_custom_algorithm() {
    let signer = Signer::builder(single("predictable-secret"))
        .algorithm(Algorithm::Sha512)
        .build()
        .unwrap();
    assert_eq!(
        signature_of(&signer, "hello"),
        "Usf3uVQOZ9m6uPfVonKR-EBXjPe7bjMbp3_Fq8MfsptgkkM1ojidN0BxYaT5HAEN1VzO9_jVu7R-VkqknHYNvw"
    );
}

#[test]
fn test_invalid_algorithm() {
    let error = "whatever".parse::<Algorithm>().unwrap_err();
    assert_eq!(error, ConfigError::InvalidAlgorithm("whatever".into()));
    assert!(error.to_string().contains("\"whatever\" is not an algorithm"));
    assert_eq!("sha1".parse::<Algorithm>().unwrap(), Algorithm::Sha1);
    assert_eq!("sha512".parse::<Algorithm>().unwrap(), Algorithm::Sha512);
}

#[test]
fn test_sign_unsign() {
    let signer = Signer::new(single("predictable-secret"));
    for example in [
        "q;wjmbk;wkmb",
        "3098247529087",
        "3098247:529:087:",
        "jkw osanteuh ,rcuh nthu aou oauh ,ud du",
        "\u{2019}",
    ] {
        let signed = signer.sign(example).unwrap();
        assert_ne!(signed, example);
        assert_eq!(signer.verify(&signed).unwrap().value, example);
    }
}

#[test]
fn test_sign_unsign_non_string() {
    // Django signs str(value); in Rust the caller formats, with Python's forms.
    let signer = Signer::new(single("predictable-secret"));
    for example in ["123", "1.23", "True", "2024-05-01"] {
        let signed = signer.sign(example).unwrap();
        assert_ne!(signed, example);
        assert_eq!(signer.verify(&signed).unwrap().value, example);
    }
}

#[test]
fn test_unsign_detects_tampering() {
    let signer = Signer::new(single("predictable-secret"));
    let signed = signer.sign("This value is unchanged").unwrap();
    let tampered = [
        signed.to_uppercase(),
        format!("{signed}a"),
        format!("a{}", &signed[1..]),
        signed.replace(':', ""),
    ];
    for value in tampered {
        let error = signer.verify(&value).unwrap_err();
        assert!(error.is_bad_signature(), "{value}: {error:?}");
    }
}

#[test]
fn test_sign_unsign_object() {
    let signer = Signer::new(single("predictable-secret"));
    let tests = [
        json!(["a", "list"]),
        json!("a string \u{2019}"),
        json!({"a": "dictionary"}),
    ];
    for compress in [false, true] {
        for obj in &tests {
            let signed = signer.sign_object(obj, compress).unwrap();
            assert_eq!(&signer.verify_object::<Value>(&signed).unwrap().value, obj);
        }
    }
}

fn dumps_signer(keyring: Keyring) -> TimestampSigner {
    TimestampSigner::for_dumps(keyring)
}

#[test]
fn test_dumps_loads() {
    let signer = dumps_signer(single("predictable-secret"));
    let objects = [
        json!(["a", "list"]),
        json!("a unicode string \u{2019}"),
        json!({"a": "dictionary"}),
    ];
    for obj in &objects {
        for compress in [false, true] {
            let token = signer.sign_object(obj, compress).unwrap();
            assert_eq!(&signer.verify_object::<Value>(&token, None).unwrap().value, obj);
        }
    }
}

#[test]
fn test_decode_detects_tampering() {
    let signer = dumps_signer(single("predictable-secret"));
    let value = json!({"foo": "bar", "baz": 1});
    let encoded = signer.sign_object(&value, false).unwrap();
    let tampered = [
        encoded.to_uppercase(),
        format!("{encoded}a"),
        format!("a{}", &encoded[1..]),
        encoded.replace(':', ""),
    ];
    for token in tampered {
        let error = signer.verify_object::<Value>(&token, None).unwrap_err();
        assert!(error.is_bad_signature(), "{token}: {error:?}");
    }
}

#[test]
fn test_works_with_non_ascii_keys() {
    let signer = Signer::new(keyring(b"\xe7", &[]));
    assert_eq!(
        signer.sign("foo").unwrap(),
        "foo:EE4qGC5MEKyQG5msxYA0sBohAxLC0BJf8uRhemh0BGU"
    );
}

#[test]
fn test_valid_sep() {
    for sep in ["/", "*sep*", ","] {
        let signer = Signer::builder(single("predictable-secret"))
            .separator(sep)
            .build()
            .unwrap();
        assert_eq!(
            signer.sign("foo").unwrap(),
            format!("foo{sep}jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0")
        );
    }
}

#[test]
fn test_invalid_sep() {
    for sep in ["", "-", "abc"] {
        let error = Signer::builder(single("predictable-secret"))
            .separator(sep)
            .build()
            .unwrap_err();
        assert_eq!(error, ConfigError::UnsafeSeparator(sep.into()));
        assert!(
            error
                .to_string()
                .contains("cannot be empty or consist of only A-z0-9-_=")
        );
    }
}

#[test]
fn test_verify_with_non_default_key() {
    let old_signer = Signer::new(single("secret"));
    let signed = old_signer.sign("abc").unwrap();
    let signer = Signer::new(keyring(b"newsecret", &[b"othersecret", b"secret"]));
    let verified = signer.verify(&signed).unwrap();
    assert_eq!(verified.value, "abc");
    assert_eq!(&*verified.key.id, "fallback-2");
}

#[test]
fn test_sign_unsign_multiple_keys() {
    let secret = Signer::new(single("secret"));
    let signer = Signer::new(keyring(b"secret", &[b"oldsecret"]));
    let signed = signer.sign("abc").unwrap();
    assert_eq!(signed, secret.sign("abc").unwrap(), "signs with the primary key");
    let verified = signer.verify(&signed).unwrap();
    assert_eq!(verified.value, "abc");
    assert_eq!(&*verified.key.id, "current");
}

#[test]
fn test_sign_unsign_ignore_secret_key_fallbacks() {
    // Django: an explicit `fallback_keys=[]` rejects old signatures. keyroll:
    // a key that is no longer a fallback (retired) verifies nothing.
    let old_signer = Signer::new(single("oldsecret"));
    let signed = old_signer.sign("abc").unwrap();
    let now = std::time::SystemTime::now();
    let retired = KeyEntry::new(
        "old",
        KeyMaterial::from("oldsecret"),
        Some(at(0)),
        Some(at(1)),
        Some(at(2)),
    );
    let current = KeyEntry::new("new", KeyMaterial::from("secret"), Some(at(1)), None, None);
    let signer = Signer::new(Keyring::new(
        KeySet::with_strength(
            vec![current, retired],
            now,
            &keyroll_core::KeyStrength::any_non_empty(),
        )
        .unwrap(),
    ));
    assert_eq!(signer.verify(&signed).unwrap_err(), Error::BadSignature);
    assert_eq!(
        Signer::new(single("secret")).verify(&signed).unwrap_err(),
        Error::BadSignature
    );
}

#[test]
fn test_default_keys_verification() {
    let old_signer = Signer::new(single("oldsecret"));
    let signed = old_signer.sign("abc").unwrap();
    let signer = Signer::new(keyring(b"secret", &[b"oldsecret"]));
    assert_eq!(signer.verify(&signed).unwrap().value, "abc");
}

// ---- TestTimestampSigner ----

#[test]
fn test_timestamp_signer() {
    let keys = single("predictable-key");
    let value = "hello";
    let at_signing = TimestampSigner::builder(keys.clone())
        .clock(|| at(123_456_789))
        .build()
        .unwrap();
    let plain = Signer::new(keys.clone());
    let ts = at_signing.sign(value).unwrap();
    assert_ne!(ts, plain.sign(value).unwrap());
    assert_eq!(at_signing.verify(&ts, None).unwrap().value, value);

    let later = TimestampSigner::builder(keys)
        .clock(|| at(123_456_800))
        .build()
        .unwrap();
    assert_eq!(
        later.verify(&ts, Some(Duration::from_secs(12))).unwrap().value,
        value
    );
    // Django also accepts `max_age=timedelta(seconds=11)`: exactly the age.
    assert_eq!(
        later.verify(&ts, Some(Duration::from_secs(11))).unwrap().value,
        value
    );
    let expired = later.verify(&ts, Some(Duration::from_secs(10))).unwrap_err();
    assert!(expired.is_expired() && expired.is_bad_signature());
    assert_eq!(
        expired,
        Error::SignatureExpired {
            age: Duration::from_secs(11),
            max_age: Duration::from_secs(10)
        }
    );
}

// ---- TestBase62 ----

#[test]
fn test_base62() {
    let mut tests: Vec<i64> = vec![-10_000_000_000, 10_000_000_000, 1_620_378_259];
    tests.extend(-100..100);
    for value in tests {
        assert_eq!(base62::decode(&base62::encode(value)), Some(value));
    }
}

// ---- TestJSONSerializerEncoding (Django main) ----

#[test]
fn test_dumps_loads_non_ascii_payload() {
    let signer = dumps_signer(single("predictable-secret"));
    let value = json!({"text": "h\u{e9}llo e\u{301} \u{1f600} \u{4e2d}\u{6587}"});
    for compress in [false, true] {
        let token = signer.sign_object(&value, compress).unwrap();
        assert!(token.is_ascii());
        assert_eq!(signer.verify_object::<Value>(&token, None).unwrap().value, value);
    }
}

#[test]
fn test_loads_reads_utf_8_bytes() {
    // A payload with raw UTF-8 (not escaped) decodes as UTF-8, like Django 6;
    // Django 5.2 would decode it as latin-1.
    let keys = single("predictable-secret");
    let raw = TimestampSigner::builder(keys.clone())
        .salt(DUMPS_SALT)
        .build()
        .unwrap();
    let token = raw.sign(&B64.encode("{\"text\":\"h\u{e9}llo\"}")).unwrap();
    let value: Value = dumps_signer(keys).verify_object(&token, None).unwrap().value;
    assert_eq!(value, json!({"text": "héllo"}));
}

// ---- keyroll: the signature text ----

/// Django compares signature strings, so only the exact text verifies: a
/// SHA-256 signature whose last character differs only in the two bits base64
/// drops (same 32 bytes, another string), padded, or in the standard alphabet
/// is refused, for the current key and for a fallback.
#[test]
fn only_the_exact_signature_text_verifies() {
    let old = Signer::new(single("the-old-key-0123456789"))
        .sign("value")
        .unwrap();
    let signer = Signer::new(keyring(b"the-new-key-0123456789", &[b"the-old-key-0123456789"]));
    let current = signer.sign("value").unwrap();
    for token in [&current, &old] {
        assert_eq!(signer.verify(token).unwrap().value, "value");
        let (value, signature) = token.rsplit_once(':').unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = alphabet.find(signature.chars().last().unwrap()).unwrap();
        assert_eq!(last & 3, 0, "a canonical text");
        for sibling in 1..4 {
            let mut text = signature[..signature.len() - 1].to_owned();
            text.push(alphabet.as_bytes()[last | sibling] as char);
            assert!(
                matches!(
                    signer.verify(&format!("{value}:{text}")),
                    Err(Error::BadSignature)
                ),
                "{text}"
            );
        }
        let standard = signature.replace('-', "+").replace('_', "/");
        for text in [format!("{signature}="), standard, signature[1..].to_owned()] {
            if text != signature {
                assert!(
                    matches!(
                        signer.verify(&format!("{value}:{text}")),
                        Err(Error::BadSignature)
                    ),
                    "{text}"
                );
            }
        }
    }
}
