//! Shared by every target: a fixed clock and a key set with a current key
//! and a fallback, so verification walks more than one key.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};

/// The fixed "now" of every target (2027-01-15), in Unix seconds.
pub const NOW_SECS: u64 = 1_800_000_000;

/// The clock handed to every signer: fuzzing must be deterministic.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// Material of the current key.
pub const CURRENT: &str = "current-key-0123456789abcdefghijklmnopqrstuvwxyz";
/// Material of the fallback key (stopped signing an hour ago).
pub const FALLBACK: &str = "fallback-key-0123456789abcdefghijklmnopqrstuvwxyz";

/// Current key `v2` signs; `v1` stopped signing an hour ago and still verifies.
pub fn keyring_with(current: &str, fallback: &str) -> Keyring {
    let hour_ago = now() - Duration::from_secs(3600);
    let set = KeySet::new(
        vec![
            KeyEntry::new("v2", KeyMaterial::from(current), Some(UNIX_EPOCH), None, None),
            KeyEntry::new(
                "v1",
                KeyMaterial::from(fallback),
                Some(UNIX_EPOCH),
                Some(hour_ago),
                None,
            ),
        ],
        now(),
    )
    .expect("v2 signs now");
    Keyring::new(set)
}

/// The two-key keyring of [`CURRENT`] and [`FALLBACK`].
pub fn keyring() -> Keyring {
    keyring_with(CURRENT, FALLBACK)
}

/// A keyring holding only the fallback key, as current: tokens it signs are
/// what the main keyring must accept as "signed by a fallback".
pub fn old_keyring() -> Keyring {
    Keyring::new(
        KeySet::new(
            vec![KeyEntry::new(
                "v1",
                KeyMaterial::from(FALLBACK),
                Some(UNIX_EPOCH),
                None,
                None,
            )],
            now(),
        )
        .expect("v1 signs now"),
    )
}

/// `token` with byte `at` (modulo its length) replaced by `with`, when that
/// changes it and the result is still text.
pub fn tampered(token: &str, at: u16, with: u8) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let mut bytes = token.as_bytes().to_vec();
    let at = usize::from(at) % bytes.len();
    if bytes[at] == with {
        return None;
    }
    bytes[at] = with;
    String::from_utf8(bytes).ok()
}
