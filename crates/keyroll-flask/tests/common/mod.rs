//! Shared test support: a rotated key ring shaped like Flask's `SECRET_KEY`
//! plus `SECRET_KEY_FALLBACKS`, and fixed clocks.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};

pub const CURRENT: &str = "flask-current-key-0123456789abcdefghijklmnopqrst";
/// Superseded by `CURRENT`: the newest fallback.
pub const NEWER: &str = "flask-newer-fallback-0123456789abcdefghijklmnopq";
/// Superseded by `NEWER`: the oldest fallback.
pub const OLDER: &str = "flask-older-fallback-0123456789abcdefghijklmnopq";
/// Out of its fallback window.
pub const RETIRED: &str = "flask-retired-key-0123456789abcdefghijklmnopqrst";

/// A frozen time (2023-11-14T22:15:23Z), in Unix seconds.
pub const T: u64 = 1_700_000_123;

pub fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

pub fn at_t() -> SystemTime {
    at(T)
}

/// `current` signs; `newer-fallback` and `older-fallback` verify (newest
/// first); `retired` no longer verifies. Roles hold at any time after 2001.
pub fn rotated() -> Keyring {
    let epoch = UNIX_EPOCH;
    let y2001 = at(1_000_000_000);
    let entries = vec![
        KeyEntry::new("current", KeyMaterial::from(CURRENT), Some(epoch), None, None),
        KeyEntry::new(
            "newer-fallback",
            KeyMaterial::from(NEWER),
            Some(epoch),
            Some(y2001),
            None,
        ),
        KeyEntry::new(
            "older-fallback",
            KeyMaterial::from(OLDER),
            Some(epoch),
            Some(y2001),
            None,
        ),
        KeyEntry::new(
            "retired",
            KeyMaterial::from(RETIRED),
            Some(epoch),
            Some(y2001),
            Some(y2001),
        ),
    ];
    Keyring::new(KeySet::new(entries, SystemTime::now()).expect("current signs"))
}

/// A keyring holding only `material`: a replica that still signs with it.
pub fn only(id: &str, material: &str) -> Keyring {
    Keyring::new(KeySet::single(id, KeyMaterial::from(material)).unwrap())
}
