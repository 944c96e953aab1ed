//! The cookie use case: reading a signed session cookie, keyroll against
//! cookie-rs's `SignedJar` (the jar axum-extra and tower-cookies sign with).
//!
//! A `SignedJar` holds one key, so across a rotation an application tries
//! one jar per key it still accepts; that is measured too.

use cookie::{Cookie, CookieJar, Key};
use keyroll_axum::CookieKeys;
use keyroll_core::Keyring;

use crate::measure::{Case, Effort, Timing, interleaved};
use crate::native::{VALUE, key, key_set, signer, token_of};

/// The cookie name.
pub const NAME: &str = "session";
/// Keys held in the rotation case.
pub const ROTATION_KEYS: usize = 16;

/// Results of the cookie section (ns per cookie read).
#[derive(Debug, Clone)]
pub struct CookieResults {
    /// cookie-rs `SignedJar::verify`, one key.
    pub cookie_one: Timing,
    /// cookie-rs, one jar per key tried newest first, cookie of the oldest of 16.
    pub cookie_sixteen_oldest: Timing,
    /// keyroll-axum `CookieKeys::verify`, one key.
    pub axum_one: Timing,
    /// keyroll-axum `CookieKeys::verify`, 16 keys, cookie of the oldest.
    pub axum_sixteen_oldest: Timing,
    /// keyroll native `Signer::verify_encoded`, one key.
    pub native_one: Timing,
    /// keyroll native `Signer::verify_encoded`, 16 keys, oldest.
    pub native_sixteen_oldest: Timing,
}

fn cookie_key(i: usize) -> Key {
    // cookie-rs wants at least 64 bytes of key material.
    let mut material = key(i).expose_secret().to_vec();
    material.resize(64, b'.');
    Key::from(&material)
}

/// The signed cookie value cookie-rs writes for `key`.
fn cookie_value(key: &Key) -> String {
    let mut jar = CookieJar::new();
    jar.signed_mut(key).add(Cookie::new(NAME, VALUE));
    jar.get(NAME).expect("just added").value().to_owned()
}

/// What an application does on each request: wrap the header value in a
/// cookie and ask the jar of each accepted key, newest first.
fn cookie_verify(jar: &CookieJar, keys: &[Key], value: &str) -> bool {
    keys.iter().any(|key| {
        jar.signed(key)
            .verify(Cookie::new(NAME, value.to_owned()))
            .is_some_and(|c| c.value() == VALUE)
    })
}

fn axum_keys(n: usize) -> CookieKeys {
    CookieKeys::builder(Keyring::new(key_set(n)))
        .salt("sessions")
        .build()
        .expect("cookie keys build")
}

/// Measures cookie reads in one interleaved run.
pub fn run(effort: Effort) -> CookieResults {
    let keys: Vec<Key> = (0..ROTATION_KEYS).map(cookie_key).collect();
    let one_value = cookie_value(&keys[0]);
    let oldest_value = cookie_value(&keys[ROTATION_KEYS - 1]);
    let jar = CookieJar::new();

    let axum_one = axum_keys(1);
    let axum_sixteen = axum_keys(ROTATION_KEYS);
    let axum_one_value = axum_one.sign(NAME, VALUE).unwrap();
    let single = |i: usize| axum_keys_single(i);
    let axum_oldest_value = single(ROTATION_KEYS - 1).sign(NAME, VALUE).unwrap();

    let native_one = signer(1);
    let native_sixteen = signer(ROTATION_KEYS);
    let native_newest = token_of(0);
    let native_oldest = token_of(ROTATION_KEYS - 1);

    let mut cases: Vec<Case<'_>> = vec![
        (
            "cookie-rs 1",
            Box::new(|| cookie_verify(&jar, &keys[..1], &one_value)),
        ),
        (
            "cookie-rs 16 oldest",
            Box::new(|| cookie_verify(&jar, &keys, &oldest_value)),
        ),
        (
            "keyroll-axum 1",
            Box::new(|| axum_one.verify(NAME, &axum_one_value).is_some()),
        ),
        (
            "keyroll-axum 16 oldest",
            Box::new(|| axum_sixteen.verify(NAME, &axum_oldest_value).is_some()),
        ),
        (
            "native 1",
            Box::new(|| native_one.verify_encoded(&native_newest).is_ok()),
        ),
        (
            "native 16 oldest",
            Box::new(|| native_sixteen.verify_encoded(&native_oldest).is_ok()),
        ),
    ];
    let t = interleaved(&mut cases, effort);
    CookieResults {
        cookie_one: t[0].clone(),
        cookie_sixteen_oldest: t[1].clone(),
        axum_one: t[2].clone(),
        axum_sixteen_oldest: t[3].clone(),
        native_one: t[4].clone(),
        native_sixteen_oldest: t[5].clone(),
    }
}

/// Cookie keys holding key `i` alone, to sign a cookie with an old key.
fn axum_keys_single(i: usize) -> CookieKeys {
    CookieKeys::builder(Keyring::new(
        keyroll_core::KeySet::single("k", key(i)).expect("bench keys are strong"),
    ))
    .salt("sessions")
    .build()
    .expect("cookie keys build")
}
