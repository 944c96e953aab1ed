//! The native token format (`keyroll_core::Signer`): arbitrary text through
//! every verify entry point, and sign → verify round trips with tampering.

#![no_main]

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use keyroll_core::{Role, Signer, VerifyError};
use libfuzzer_sys::fuzz_target;

struct Signers {
    plain: Signer,
    salted: Signer,
    timed: Signer,
    old_plain: Signer,
    old_timed: Signer,
}

static SIGNERS: LazyLock<Signers> = LazyLock::new(|| Signers {
    plain: Signer::new(common::keyring()).with_clock(common::now),
    salted: Signer::new(common::keyring())
        .with_salt("other")
        .with_clock(common::now),
    timed: Signer::new(common::keyring())
        .with_timestamps()
        .with_clock(common::now),
    old_plain: Signer::new(common::old_keyring()).with_clock(common::now),
    old_timed: Signer::new(common::old_keyring())
        .with_timestamps()
        .with_clock(common::now),
});

#[derive(Arbitrary, Debug)]
enum Input {
    /// Text from the wire: it must be refused cleanly (no panic), and the
    /// entry points must agree with each other.
    Verify { token: String, max_age: Option<u32> },
    /// A value signed by us: it must verify to itself, only with our salt,
    /// and no single-byte change, truncation or extension may verify.
    RoundTrip {
        value: Vec<u8>,
        timestamped: bool,
        by_fallback: bool,
        tamper_at: u16,
        tamper_with: u8,
        cut: u16,
        extra: String,
    },
}

fn verify_everywhere(signer: &Signer, token: &str) {
    let encoded = signer.verify_encoded(token);
    let bytes = signer.verify_bytes(token);
    let text = signer.verify(token);
    let _ = signer.verify_value::<serde_json::Value>(token);
    match (&encoded, &bytes) {
        (Ok(e), Ok(b)) => assert_eq!(e.key, b.key),
        (Err(e), Err(b)) => assert_eq!(e, b, "verify_bytes fails differently from verify_encoded"),
        (Ok(_), Err(VerifyError::Malformed(_))) => {}
        (e, b) => panic!("verify_encoded {e:?} but verify_bytes {b:?}"),
    }
    if let (Ok(b), Ok(t)) = (&bytes, &text) {
        assert_eq!(b.value, t.value.as_bytes());
    }
    if let Ok(t) = &text {
        // Only a real token verifies; a real token re-signs to itself.
        assert!(token.starts_with("kr1"), "{token:?} verified");
        assert!(t.timestamp.is_some() == token.starts_with("kr1t."));
    }
}

fuzz_target!(|input: Input| {
    let s = &*SIGNERS;
    match input {
        Input::Verify { token, max_age } => {
            verify_everywhere(&s.plain, &token);
            verify_everywhere(&s.salted, &token);
            verify_everywhere(&s.timed, &token);
            if let Some(max_age) = max_age {
                let strict = Signer::new(common::keyring())
                    .with_timestamps()
                    .with_max_age(Duration::from_secs(u64::from(max_age)))
                    .with_clock(common::now);
                verify_everywhere(&strict, &token);
            }
        }
        Input::RoundTrip {
            value,
            timestamped,
            by_fallback,
            tamper_at,
            tamper_with,
            cut,
            extra,
        } => {
            let signer = match (timestamped, by_fallback) {
                (false, false) => &s.plain,
                (true, false) => &s.timed,
                (false, true) => &s.old_plain,
                (true, true) => &s.old_timed,
            };
            let token = signer.sign_bytes(&value).unwrap();
            let verifier = if timestamped { &s.timed } else { &s.plain };
            let verified = verifier
                .verify_bytes(&token)
                .unwrap_or_else(|e| panic!("own token {token:?} does not verify: {e}"));
            assert_eq!(verified.value, value);
            let (id, role) = if by_fallback {
                ("v1", Role::Fallback)
            } else {
                ("v2", Role::Current)
            };
            assert_eq!(&*verified.key.id, id);
            assert_eq!(verified.key.role, role);
            assert_eq!(verified.needs_resign(), by_fallback);
            assert_eq!(verified.timestamp, timestamped.then(common::now));
            if timestamped {
                let strict = Signer::new(common::keyring())
                    .with_timestamps()
                    .with_max_age(Duration::from_secs(1))
                    .with_clock(common::now);
                assert_eq!(strict.verify_bytes(&token).map(|v| v.value), Ok(value.clone()));
            } else {
                let strict = Signer::new(common::keyring())
                    .with_max_age(Duration::from_secs(1))
                    .with_clock(common::now);
                assert_eq!(
                    strict.verify_bytes(&token).err(),
                    Some(VerifyError::MissingTimestamp)
                );
            }
            if let Ok(text) = std::str::from_utf8(&value) {
                assert_eq!(verifier.verify(&token).map(|v| v.value).as_deref(), Ok(text));
            }
            assert_eq!(
                s.salted.verify_bytes(&token).err(),
                Some(VerifyError::BadSignature)
            );

            if let Some(bad) = common::tampered(&token, tamper_at, tamper_with) {
                assert!(
                    verifier.verify_encoded(&bad).is_err(),
                    "tampered {bad:?} of {token:?} verified"
                );
            }
            let cut = usize::from(cut) % token.len();
            assert!(
                verifier.verify_encoded(&token[..cut]).is_err(),
                "prefix {cut} verified"
            );
            if !extra.is_empty() {
                let longer = format!("{token}{extra}");
                assert!(verifier.verify_encoded(&longer).is_err(), "{longer:?} verified");
                let prefixed = format!("{extra}{token}");
                assert!(
                    verifier.verify_encoded(&prefixed).is_err(),
                    "{prefixed:?} verified"
                );
            }
        }
    }
});
