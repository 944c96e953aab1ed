//! Shared test support: key rings shaped like Django's `SECRET_KEY` plus
//! `SECRET_KEY_FALLBACKS`, and fixed clocks.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, KeyStrength, Keyring};

/// A keyring whose current key is `current` (id `current`) followed by
/// fallbacks `fallback-1`, `fallback-2`, … in the given order, like
/// `SECRET_KEY = current; SECRET_KEY_FALLBACKS = fallbacks`.
pub fn keyring(current: &[u8], fallbacks: &[&[u8]]) -> Keyring {
    let mut entries = vec![KeyEntry::new(
        "current",
        KeyMaterial::new(current),
        Some(UNIX_EPOCH),
        None,
        None,
    )];
    for (index, fallback) in fallbacks.iter().enumerate() {
        // Superseded since the epoch, so a fallback at any test time.
        entries.push(KeyEntry::new(
            format!("fallback-{}", index + 1),
            KeyMaterial::new(*fallback),
            Some(UNIX_EPOCH),
            Some(UNIX_EPOCH),
            None,
        ));
    }
    // Django's own test keys (`secret`, `oldsecret`) are short: any non-empty key passes here.
    let set = KeySet::with_strength(entries, SystemTime::now(), &KeyStrength::any_non_empty());
    Keyring::new(set.expect("the current key signs"))
}

/// A keyring with the single key `secret`.
pub fn single(secret: &str) -> Keyring {
    keyring(secret.as_bytes(), &[])
}

pub fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// 2023-11-14T22:13:20Z, base62 `1r31eq`: the time of the REFERENCES vectors.
pub fn at_1700000000() -> SystemTime {
    at(1_700_000_000)
}
