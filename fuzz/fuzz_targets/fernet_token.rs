//! Fernet token decryption (`keyroll_fernet::Encrypter::decrypt`): arbitrary
//! text, tokens with a valid MAC around arbitrary ciphertext (reaching the
//! AES and padding code a forger cannot reach), and encrypt → decrypt round
//! trips with arbitrary timestamps and TTLs.

#![no_main]

mod common;

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use hmac::{Hmac, Mac};
use keyroll_core::Role;
use keyroll_fernet::{DecryptError, Derive, Encrypter, FernetKey, MAX_CLOCK_SKEW};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const CURRENT: [u8; 32] = [7; 32];
const FALLBACK: [u8; 32] = [9; 32];

static ENCRYPTER: LazyLock<Encrypter> = LazyLock::new(|| {
    let keyring = common::keyring_with(&URL_SAFE.encode(CURRENT), &URL_SAFE.encode(FALLBACK));
    Encrypter::new(keyring, Derive::Raw)
        .expect("both keys are Fernet keys")
        .with_clock(common::now)
});

#[derive(Arbitrary, Debug)]
enum Input {
    /// Text from a database column: refused cleanly.
    Decrypt { token: String, ttl: Option<u64> },
    /// A token whose MAC is valid, around arbitrary ciphertext.
    ValidMac {
        fallback: bool,
        timestamp: u64,
        iv: [u8; 16],
        ciphertext: Vec<u8>,
        ttl: Option<u64>,
    },
    /// Our own token: decrypts to its plaintext; no changed byte decrypts.
    RoundTrip {
        fallback: bool,
        plaintext: Vec<u8>,
        timestamp: u64,
        iv: [u8; 16],
        ttl: Option<u64>,
        tamper_at: u16,
        tamper_with: u8,
    },
}

/// What the TTL check must say, from the spec: too old, or more than the
/// clock skew ahead.
fn time_verdict(timestamp: u64, ttl: Option<u64>) -> Option<&'static str> {
    let ttl = ttl?;
    let now = common::NOW_SECS;
    if u128::from(timestamp) + u128::from(ttl) < u128::from(now) {
        Some("expired")
    } else if u128::from(timestamp) > u128::from(now) + u128::from(MAX_CLOCK_SKEW.as_secs()) {
        Some("future")
    } else {
        None
    }
}

fn assert_time_error(result: &Result<keyroll_fernet::Verified<Vec<u8>>, DecryptError>, verdict: &str) {
    match verdict {
        "expired" => assert!(matches!(result, Err(DecryptError::Expired { .. })), "{result:?}"),
        _ => assert!(
            matches!(result, Err(DecryptError::FromTheFuture { .. })),
            "{result:?}"
        ),
    }
}

fuzz_target!(|input: Input| {
    let encrypter = &*ENCRYPTER;
    match input {
        Input::Decrypt { token, ttl } => {
            let result = encrypter.decrypt(&token, ttl.map(Duration::from_secs));
            assert!(result.is_err(), "{token:?} decrypted without a key");
            let _ = encrypter.rotate(&token);
        }
        Input::ValidMac {
            fallback,
            timestamp,
            iv,
            mut ciphertext,
            ttl,
        } => {
            ciphertext.truncate(ciphertext.len() / 16 * 16);
            if ciphertext.is_empty() {
                ciphertext.resize(16, 0);
            }
            let key = if fallback { FALLBACK } else { CURRENT };
            let mut bytes = vec![0x80];
            bytes.extend_from_slice(&timestamp.to_be_bytes());
            bytes.extend_from_slice(&iv);
            bytes.extend_from_slice(&ciphertext);
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key[..16]).unwrap();
            mac.update(&bytes);
            bytes.extend_from_slice(&mac.finalize().into_bytes());
            let token = URL_SAFE.encode(&bytes);
            let result = encrypter.decrypt(&token, ttl.map(Duration::from_secs));
            if let Some(verdict) = time_verdict(timestamp, ttl) {
                assert_time_error(&result, verdict);
                return;
            }
            match &result {
                Ok(d) => {
                    // PKCS#7 strips 1..=16 bytes.
                    assert!(d.value.len() < ciphertext.len());
                    assert!(d.value.len() + 16 >= ciphertext.len());
                    assert_eq!(d.key.role, if fallback { Role::Fallback } else { Role::Current });
                    assert_eq!(d.timestamp, Some(UNIX_EPOCH + Duration::from_secs(timestamp)));
                    let again = encrypter.rotate(&token).expect("a decryptable token rotates");
                    let back = encrypter.decrypt(&again, None).expect("a rotated token decrypts");
                    assert_eq!(back.value, d.value);
                    assert_eq!(back.timestamp, d.timestamp);
                    assert_eq!(back.key.role, Role::Current);
                }
                Err(DecryptError::BadPadding) => {}
                Err(DecryptError::Malformed(_))
                    if UNIX_EPOCH.checked_add(Duration::from_secs(timestamp)).is_none() => {}
                Err(other) => panic!("valid MAC, yet {other:?}"),
            }
        }
        Input::RoundTrip {
            fallback,
            plaintext,
            timestamp,
            iv,
            ttl,
            tamper_at,
            tamper_with,
        } => {
            let key = FernetKey::from_bytes(if fallback { &FALLBACK } else { &CURRENT });
            let token = key.encrypt_with_iv(&plaintext, timestamp, &iv);
            let result = encrypter.decrypt(&token, ttl.map(Duration::from_secs));
            if let Some(verdict) = time_verdict(timestamp, ttl) {
                assert_time_error(&result, verdict);
            } else if UNIX_EPOCH.checked_add(Duration::from_secs(timestamp)).is_some() {
                let d = result.unwrap_or_else(|e| panic!("own token {token:?} does not decrypt: {e}"));
                assert_eq!(d.value, plaintext);
                assert_eq!(d.needs_resign(), fallback);
            }
            let surrounded = format!(" \n{token}\t ");
            assert_eq!(
                encrypter.decrypt(&surrounded, None).map(|d| d.value).ok(),
                encrypter.decrypt(&token, None).map(|d| d.value).ok()
            );
            if let Some(bad) = common::tampered(&token, tamper_at, tamper_with)
                && bad.trim_ascii() != token
            {
                let result = encrypter.decrypt(&bad, None);
                assert!(result.is_err(), "tampered {bad:?} of {token:?} decrypted");
            }
        }
    }
});
