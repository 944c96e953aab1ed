//! The suite every token format runs (native, Django, JWT, Flask, Fernet),
//! as [`conformance`](crate::conformance) is for providers: a format's tests
//! implement [`FormatUnderTest`] over its signer and call [`run`].
//!
//! It pins down what every format promises, whatever its wire layout:
//!
//! - a keyring that has failed closed refuses both sign and verify, and
//!   says [`Rejection::Stale`];
//! - the keys that verify are the current key, pending keys and fallbacks,
//!   and [`VerifiedBy`](keyroll_core::VerifiedBy) names the one that did,
//!   with its role; [`Verified::needs_resign`] is true exactly for a key
//!   other than the current one; a retired key never verifies;
//! - each verification is counted once, on the key and role that verified
//!   ([`KeyEntry::verifications_of`]), and each refusal once in
//!   `keyroll_rejections_total`, labelled with the format;
//! - a key revoked in a new generation stops verifying at once.
//!
//! ```no_run
//! use keyroll_core::{Format, Keyring, Verified};
//! use keyroll_core::kit::Rejection;
//! use keyroll_testkit::formats::{self, FormatUnderTest, SignRefused};
//!
//! struct Native(keyroll_core::Signer);
//!
//! impl FormatUnderTest for Native {
//!     const FORMAT: Format = Format::Native;
//!     fn over(keyring: Keyring) -> Self {
//!         Self(keyroll_core::Signer::new(keyring))
//!     }
//!     fn sign(&self, value: &str) -> Result<String, SignRefused> {
//!         self.0.sign(value).map_err(SignRefused::from)
//!     }
//!     fn verify(&self, token: &str) -> Result<Verified<String>, Rejection> {
//!         self.0.verify(token).map_err(|e| e.rejection())
//!     }
//! }
//!
//! formats::run::<Native>();
//! ```

mod closed;
mod recorder;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::kit::Rejection;
use keyroll_core::{Format, KeyEntry, KeyMaterial, KeySet, Keyring, Role, Verified};

pub use self::closed::closed_keyring;
use self::recorder::Rejections;

/// Why a format signed nothing, as its error says it.
#[derive(Debug)]
pub struct SignRefused(pub String);

impl<E: std::error::Error> From<E> for SignRefused {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

impl fmt::Display for SignRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A token format, as the suite drives it: its signer over a keyring with
/// default settings, signing and verifying a string.
pub trait FormatUnderTest: Sized {
    /// The format, as usage counts and metrics label it.
    const FORMAT: Format;
    /// A signer of this format over `keyring`.
    fn over(keyring: Keyring) -> Self;
    /// A token for `value` (the format may wrap it as it needs, such as a
    /// JWT claim or a Flask session key).
    ///
    /// # Errors
    /// When nothing may sign.
    fn sign(&self, value: &str) -> Result<String, SignRefused>;
    /// The value of `token` and the key that verified it.
    ///
    /// # Errors
    /// The kind of the format's refusal.
    fn verify(&self, token: &str) -> Result<Verified<String>, Rejection>;
    /// Key material for the `n`th key of the suite's sets (a long random-
    /// looking secret; a format that needs another form overrides it).
    fn material(n: u8) -> KeyMaterial {
        KeyMaterial::from(format!(
            "keyroll-format-suite-key-{n}-0f3a9c2e7b5d1f8a4c6e0b2d9f7a3c5e1b8d"
        ))
    }
}

/// Runs every check of the suite for `F`.
///
/// # Panics
/// When `F` breaks a promise, naming it.
pub fn run<F: FormatUnderTest>() {
    a_closed_keyring_refuses_sign_and_verify::<F>();
    keys_verify_in_their_roles_and_only_superseded_ones_need_a_resign::<F>();
    each_refusal_is_counted_once::<F>();
    a_revoked_key_stops_verifying_at_once::<F>();
}

const VALUE: &str = "format-suite-value-42";
const HOUR: Duration = Duration::from_secs(3600);

/// A keyring whose only key is `id` with the suite's `n`th material.
fn only<F: FormatUnderTest>(id: &str, n: u8) -> Keyring {
    let entry = KeyEntry::new(id, F::material(n), Some(UNIX_EPOCH), None, None);
    Keyring::new(KeySet::new(vec![entry], SystemTime::now()).expect("one key signs"))
}

/// A token of `value` signed by the key `id` alone.
fn token_of<F: FormatUnderTest>(id: &str, n: u8) -> String {
    F::over(only::<F>(id, n))
        .sign(VALUE)
        .unwrap_or_else(|e| panic!("{}: a keyring of one key signs: {e}", F::FORMAT))
}

/// Pending, current, fallback and retired keys, in that order.
fn four_roles<F: FormatUnderTest>() -> KeySet {
    let now = SystemTime::now();
    KeySet::new(
        vec![
            KeyEntry::new("pending", F::material(1), Some(now + HOUR), None, None),
            KeyEntry::new(
                "current",
                F::material(2),
                Some(UNIX_EPOCH),
                Some(now + HOUR),
                None,
            ),
            KeyEntry::new(
                "fallback",
                F::material(3),
                Some(UNIX_EPOCH),
                Some(UNIX_EPOCH),
                Some(now + HOUR),
            ),
            KeyEntry::new(
                "retired",
                F::material(4),
                Some(UNIX_EPOCH),
                Some(UNIX_EPOCH),
                Some(UNIX_EPOCH + HOUR),
            ),
        ],
        now,
    )
    .expect("the current key signs")
}

/// Refused because of the key: unknown to the keyring, or no key matches.
fn is_key_refusal(rejection: Rejection) -> bool {
    matches!(rejection, Rejection::UnknownKey | Rejection::BadSignature)
}

/// Once the keyring has failed closed nothing signs, and a token that
/// verified a moment before is refused as stale.
pub fn a_closed_keyring_refuses_sign_and_verify<F: FormatUnderTest>() {
    let format = F::FORMAT;
    let token = token_of::<F>("current", 2);
    let open = only::<F>("current", 2);
    assert!(
        F::over(open).verify(&token).is_ok(),
        "{format}: verifies while open"
    );
    let closed = closed_keyring(
        KeySet::new(
            vec![KeyEntry::new(
                "current",
                F::material(2),
                Some(UNIX_EPOCH),
                None,
                None,
            )],
            SystemTime::now(),
        )
        .expect("one key signs"),
    );
    let signer = F::over(closed.keyring().clone());
    assert!(
        signer.sign(VALUE).is_err(),
        "{format}: a closed keyring signs nothing"
    );
    let rejections = Rejections::during(|| {
        assert_eq!(
            signer.verify(&token).map(|v| v.value),
            Err(Rejection::Stale),
            "{format}: a closed keyring verifies nothing"
        );
    });
    rejections.assert_once(format, "stale");
}

/// The current, pending and fallback keys verify, each named with its role
/// and counted once on it; only the current key's tokens need no resign; a
/// retired key's tokens are refused.
pub fn keys_verify_in_their_roles_and_only_superseded_ones_need_a_resign<F: FormatUnderTest>() {
    let format = F::FORMAT;
    let keyring = Keyring::new(four_roles::<F>());
    let signer = F::over(keyring.clone());
    let own = signer.sign(VALUE).expect("the current key signs");
    let verified = signer.verify(&own).expect("its own token verifies");
    assert_eq!(
        (&*verified.key.id, verified.key.role),
        ("current", Role::Current),
        "{format}: the current key signs"
    );
    for (id, n, role) in [
        ("current", 2, Role::Current),
        ("pending", 1, Role::Pending),
        ("fallback", 3, Role::Fallback),
    ] {
        let set = keyring.key_set();
        let entry = set.key(id).expect("in the set");
        let before = entry.verifications_of(format, role);
        let verified = signer
            .verify(&token_of::<F>(id, n))
            .unwrap_or_else(|e| panic!("{format}: a token of the {role} key verifies: {e}"));
        assert_eq!(verified.value, VALUE, "{format}");
        assert_eq!(
            (&*verified.key.id, verified.key.role),
            (id, role),
            "{format}: VerifiedBy names the key that verified"
        );
        assert_eq!(
            verified.needs_resign(),
            role != Role::Current,
            "{format}: needs_resign exactly for a key other than the current one ({role})"
        );
        assert_eq!(
            entry.verifications_of(format, role),
            before + 1,
            "{format}: counted once on the {role} key"
        );
    }
    let refused = signer.verify(&token_of::<F>("retired", 4));
    assert!(
        refused.as_ref().is_err_and(|r| is_key_refusal(*r)),
        "{format}: a retired key never verifies: {:?}",
        refused.map(|v| v.key)
    );
    let total: u64 = keyring.key_set().keys().iter().map(|k| k.verifications()).sum();
    assert_eq!(total, 4, "{format}: four verifications, four counts");
}

/// A refused token is counted once in `keyroll_rejections_total`, with the
/// format and the reason of the refusal; an accepted one not at all.
pub fn each_refusal_is_counted_once<F: FormatUnderTest>() {
    let format = F::FORMAT;
    let signer = F::over(only::<F>("current", 2));
    let token = signer.sign(VALUE).expect("signs");
    let accepted = Rejections::during(|| {
        signer.verify(&token).expect("verifies");
    });
    accepted.assert_none(format);
    let stranger = token_of::<F>("stranger", 9);
    let refused = Rejections::during(|| {
        let refusal = signer.verify(&stranger).map(|v| v.key).unwrap_err();
        assert!(
            is_key_refusal(refusal),
            "{format}: another key's token: {refusal:?}"
        );
    });
    refused.assert_one(format);
    let garbage = Rejections::during(|| {
        assert!(
            signer.verify("not a token").is_err(),
            "{format}: garbage is refused"
        );
    });
    garbage.assert_one(format);
}

/// A key dropped by the next generation (revoked) stops verifying the
/// moment the generation is installed.
pub fn a_revoked_key_stops_verifying_at_once<F: FormatUnderTest>() {
    let format = F::FORMAT;
    let now = SystemTime::now();
    let current = || KeyEntry::new("current", F::material(2), Some(UNIX_EPOCH), None, None);
    let keyring = Keyring::new(
        KeySet::new(
            vec![
                current(),
                KeyEntry::new("old", F::material(3), Some(UNIX_EPOCH), Some(UNIX_EPOCH), None),
            ],
            now,
        )
        .expect("the current key signs"),
    );
    let signer = F::over(keyring.clone());
    let old = token_of::<F>("old", 3);
    assert_eq!(
        signer.verify(&old).map(|v| v.key.role),
        Ok(Role::Fallback),
        "{format}: the old key verifies as a fallback"
    );
    keyring.install(KeySet::new(vec![current()], now).expect("the current key signs"));
    let refused = signer.verify(&old).map(|v| v.key);
    assert!(
        refused.as_ref().is_err_and(|r| is_key_refusal(*r)),
        "{format}: a revoked key stops verifying at once: {refused:?}"
    );
    let own = signer.sign(VALUE).expect("signs");
    assert!(
        signer.verify(&own).is_ok(),
        "{format}: the current key still verifies"
    );
}
