//! Turning key material into Fernet keys: raw Fernet keys, HKDF derivation,
//! and errors that say how to fix a wrong key without showing it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use keyroll_core::{KeyMaterial, KeySet, Keyring};
use keyroll_fernet::{Derive, Encrypter, FernetKey, KeyError, generate_key, hkdf_fernet_key};

fn encrypter(material: KeyMaterial, derive: Derive) -> Result<Encrypter, KeyError> {
    Encrypter::new(Keyring::new(KeySet::single("k1", material).unwrap()), derive)
}

#[test]
fn generated_keys_are_32_random_bytes_as_padded_urlsafe_base64() {
    let (a, b) = (generate_key(), generate_key());
    assert_ne!(a, b);
    for key in [&a, &b] {
        let text = std::str::from_utf8(key.expose_secret()).unwrap();
        assert_eq!(text.len(), 44);
        assert!(text.ends_with('='));
        assert_eq!(URL_SAFE.decode(text).unwrap().len(), 32);
    }
}

#[test]
fn raw_keys_are_accepted_padded_unpadded_trimmed_or_in_the_standard_alphabet() {
    let bytes: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(250)).collect();
    let padded = URL_SAFE.encode(&bytes);
    let reference = encrypter(KeyMaterial::from(padded.clone()), Derive::Raw).unwrap();
    let token = reference.encrypt("x").unwrap();
    assert!(
        STANDARD.encode(&bytes).contains(['+', '/']),
        "the standard spelling differs"
    );
    for spelling in [
        URL_SAFE_NO_PAD.encode(&bytes),
        format!("{padded}\n"),
        format!("  {padded}\r\n"),
        STANDARD.encode(&bytes),
    ] {
        let other = encrypter(KeyMaterial::from(spelling.clone()), Derive::Raw).unwrap();
        assert_eq!(other.decrypt(&token, None).unwrap().value, b"x", "{spelling:?}");
    }
}

#[test]
fn a_secret_that_is_not_a_fernet_key_suggests_hkdf_and_names_only_the_key_id() {
    let secret = "django-secret-key-with-punctuation!-and-more-than-32-bytes";
    let error = encrypter(KeyMaterial::from(secret), Derive::Raw).unwrap_err();
    assert_eq!(
        error,
        KeyError::NotAFernetKey {
            id: "k1".into(),
            decoded_len: None
        }
    );
    let message = error.to_string();
    assert!(message.contains("key k1 is not a Fernet key"), "{message}");
    assert!(message.contains("not url-safe base64"), "{message}");
    assert!(message.contains("--derive hkdf"), "{message}");
    assert!(!message.contains(secret) && !format!("{error:?}").contains(secret));
}

#[test]
fn base64_of_the_wrong_length_reports_its_decoded_length() {
    // 64 hex digits are valid base64 of 48 bytes, a common mistake.
    let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let error = encrypter(KeyMaterial::from(hex), Derive::Raw).unwrap_err();
    assert_eq!(
        error,
        KeyError::NotAFernetKey {
            id: "k1".into(),
            decoded_len: Some(48)
        }
    );
    assert!(
        error.to_string().contains("decodes to 48 bytes, not 32"),
        "{error}"
    );
    let short = URL_SAFE.encode([7u8; 16]);
    let error = FernetKey::from_key_text(short.as_bytes()).unwrap_err();
    assert!(
        matches!(error, KeyError::NotAFernetKey { decoded_len: Some(16), ref id } if id.starts_with("k-"))
    );
}

#[test]
fn hkdf_turns_any_secret_into_a_fernet_key_deterministically() {
    let secret = KeyMaterial::from("django-secret-key-with-punctuation!-and-more-than-32-bytes");
    let writer = encrypter(secret.clone(), Derive::Hkdf).unwrap();
    let reader = encrypter(secret.clone(), Derive::Hkdf).unwrap();
    let token = writer.encrypt("x").unwrap();
    assert_eq!(reader.decrypt(&token, None).unwrap().value, b"x");
    // The derived key is an ordinary Fernet key: a raw encrypter holding it reads the same tokens.
    let derived = hkdf_fernet_key(secret.expose_secret());
    let raw = encrypter(derived, Derive::Raw).unwrap();
    assert_eq!(raw.decrypt(&token, None).unwrap().value, b"x");
}

#[test]
fn hkdf_and_raw_give_different_keys_for_the_same_fernet_key_text() {
    let key = generate_key();
    let raw = encrypter(key.clone(), Derive::Raw).unwrap();
    let hkdf = encrypter(key, Derive::Hkdf).unwrap();
    let token = raw.encrypt("x").unwrap();
    assert!(hkdf.decrypt(&token, None).is_err());
    assert_eq!(hkdf.derive(), Derive::Hkdf);
}

#[test]
fn derive_names_parse_and_print() {
    assert_eq!("raw".parse::<Derive>(), Ok(Derive::Raw));
    assert_eq!("HKDF".parse::<Derive>(), Ok(Derive::Hkdf));
    assert_eq!(Derive::default(), Derive::Raw);
    assert_eq!(Derive::Hkdf.to_string(), "hkdf");
    let error = "pbkdf2".parse::<Derive>().unwrap_err();
    assert!(
        error.to_string().contains("`raw`") && error.to_string().contains("`hkdf`"),
        "{error}"
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let key = generate_key();
    let text = std::str::from_utf8(key.expose_secret()).unwrap().to_owned();
    let encrypter = encrypter(key.clone(), Derive::Raw).unwrap();
    let fernet_key = FernetKey::from_key_text(key.expose_secret()).unwrap();
    for shown in [
        format!("{encrypter:?}"),
        format!("{fernet_key:?}"),
        format!("{:?}", encrypter.keyring()),
    ] {
        assert!(!shown.contains(&text[..20]), "{shown}");
    }
}
