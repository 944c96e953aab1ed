//! Django `Signer` / `TimestampSigner` (keyroll-django): arbitrary text
//! through `verify`, round trips with arbitrary separators, and validly
//! signed values with arbitrary timestamps through the `max_age` check.

#![no_main]

mod common;

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use keyroll_core::Role;
use keyroll_django::{Error, Signer, TIMESTAMP_SIGNER_SALT, TimestampSigner, base62};
use libfuzzer_sys::fuzz_target;

struct Signers {
    plain: Signer,
    timed: TimestampSigner,
    /// Signs `value:timestamp` exactly as a TimestampSigner would, with any timestamp.
    stamper: Signer,
}

static SIGNERS: LazyLock<Signers> = LazyLock::new(|| Signers {
    plain: Signer::builder(common::keyring())
        .clock(common::now)
        .build()
        .unwrap(),
    timed: TimestampSigner::builder(common::keyring())
        .clock(common::now)
        .build()
        .unwrap(),
    stamper: Signer::builder(common::keyring())
        .salt(TIMESTAMP_SIGNER_SALT)
        .clock(common::now)
        .build()
        .unwrap(),
});

#[derive(Arbitrary, Debug)]
enum Input {
    /// Text from a cookie or a URL: refused cleanly, never verified.
    Verify { token: String, max_age: Option<u64> },
    /// Our own value with an arbitrary separator: verifies to itself; a
    /// changed byte never verifies.
    RoundTrip {
        value: String,
        separator: String,
        fallback: bool,
        tamper_at: u16,
        tamper_with: u8,
    },
    /// A validly signed `value:timestamp` with an arbitrary timestamp text.
    Timestamp {
        value: String,
        timestamp: String,
        max_age: Option<u64>,
    },
}

fuzz_target!(|input: Input| {
    let s = &*SIGNERS;
    match input {
        Input::Verify { token, max_age } => {
            let max_age = max_age.map(Duration::from_secs);
            let plain = s.plain.verify(&token);
            let timed = s.timed.verify(&token, max_age);
            let _ = s.plain.verify_object::<serde_json::Value>(&token);
            let _ = s.timed.verify_object::<serde_json::Value>(&token, max_age);
            // Nobody can sign without the key: the salts differ, so one
            // token never passes both.
            assert!(
                plain.is_err() || timed.is_err(),
                "{token:?} verified for two salts"
            );
        }
        Input::RoundTrip {
            value,
            separator,
            fallback,
            tamper_at,
            tamper_with,
        } => {
            let Ok(verifier) = Signer::builder(common::keyring())
                .separator(separator.as_str())
                .clock(common::now)
                .build()
            else {
                return;
            };
            let keyring = if fallback {
                common::old_keyring()
            } else {
                common::keyring()
            };
            let signer = Signer::builder(keyring.clone())
                .separator(separator.as_str())
                .clock(common::now)
                .build()
                .expect("the same separator builds twice");
            let signed = signer.sign(&value).unwrap();
            let verified = verifier
                .verify(&signed)
                .unwrap_or_else(|e| panic!("own {signed:?} does not verify: {e}"));
            assert_eq!(verified.value, value);
            assert_eq!(
                verified.key.role,
                if fallback { Role::Fallback } else { Role::Current }
            );
            if let Some(bad) = common::tampered(&signed, tamper_at, tamper_with) {
                assert!(
                    verifier.verify(&bad).is_err(),
                    "tampered {bad:?} of {signed:?} verified"
                );
            }

            let timed_verifier = TimestampSigner::builder(common::keyring())
                .separator(separator.as_str())
                .clock(common::now)
                .build()
                .expect("same separator");
            let timed_signer = TimestampSigner::builder(keyring)
                .separator(separator.as_str())
                .clock(common::now)
                .build()
                .expect("same separator");
            let stamped = timed_signer.sign(&value).unwrap();
            let verified = timed_verifier
                .verify(&stamped, Some(Duration::ZERO))
                .unwrap_or_else(|e| panic!("own {stamped:?} does not verify: {e}"));
            assert_eq!(verified.value, value);
            assert_eq!(verified.timestamp, Some(common::now()));
            assert!(
                verifier.verify(&stamped).is_err(),
                "salts must separate the two signers"
            );
        }
        Input::Timestamp {
            value,
            timestamp,
            max_age,
        } => {
            let stamped = format!("{value}:{timestamp}");
            let token = s.stamper.sign(&stamped).unwrap();
            let max_age_d = max_age.map(Duration::from_secs);
            let result = s.timed.verify(&token, max_age_d);
            // The oracle: what Django does with the same text.
            let (expected_value, ts_text) = stamped.rsplit_once(':').expect("we put a ':'");
            match base62::decode(ts_text) {
                None => assert!(
                    matches!(result, Err(Error::BadTimestamp)),
                    "{ts_text:?}: {result:?}"
                ),
                Some(seconds) => {
                    let age = i128::from(common::NOW_SECS) - i128::from(seconds);
                    let expired = max_age.is_some_and(|m| age > i128::from(m));
                    if expired {
                        assert!(
                            matches!(result, Err(Error::SignatureExpired { .. })),
                            "{result:?}"
                        );
                    } else {
                        let verified = result.unwrap_or_else(|e| panic!("{token:?}: {e}"));
                        assert_eq!(verified.value, expected_value);
                        if (0..=4_000_000_000).contains(&seconds) {
                            assert_eq!(
                                verified.timestamp,
                                Some(UNIX_EPOCH + Duration::from_secs(seconds as u64))
                            );
                        }
                    }
                }
            }
        }
    }
});
