//! Shared test support: a rotated key ring (current, fallback, retired) and
//! a fixed clock.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};

pub const CURRENT: &str = "jwt-current-key-0123456789abcdefghijklmnopqrstuv";
pub const FALLBACK: &str = "jwt-fallback-key-0123456789abcdefghijklmnopqrstu";
pub const RETIRED: &str = "jwt-retired-key-0123456789abcdefghijklmnopqrstuv";
pub const STRANGER: &str = "jwt-stranger-key-0123456789abcdefghijklmnopqrstu";

/// The fixed "now" of the unit tests (2027-01-15), in Unix seconds.
pub const NOW: u64 = 1_800_000_000;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// `k3` signs; `k2` stopped signing (fallback); `k1` stopped verifying
/// (retired). Roles hold at any time after 2001.
pub fn rotated() -> Keyring {
    let epoch = UNIX_EPOCH;
    let y2001 = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let entries = vec![
        KeyEntry::new("k3", KeyMaterial::from(CURRENT), Some(epoch), None, None),
        KeyEntry::new("k2", KeyMaterial::from(FALLBACK), Some(epoch), Some(y2001), None),
        KeyEntry::new(
            "k1",
            KeyMaterial::from(RETIRED),
            Some(epoch),
            Some(y2001),
            Some(y2001),
        ),
    ];
    Keyring::new(KeySet::new(entries, SystemTime::now()).expect("k3 signs"))
}

/// A keyring holding only `material`, as `id`: a replica signing with it.
pub fn only(id: &str, material: &str) -> Keyring {
    Keyring::new(KeySet::single(id, KeyMaterial::from(material)).unwrap())
}
