//! Set-up shared by the test files.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, KeyStrength};

/// `v2` current, `v1` fallback: the set after one rotation. Any non-empty
/// key passes: the Python peers' fixtures include short Django secrets.
pub fn rotated_set(v2: &KeyMaterial, v1: &KeyMaterial) -> KeySet {
    let now = SystemTime::now();
    KeySet::with_strength(
        vec![
            KeyEntry::new("v2", v2.clone(), Some(now - Duration::from_secs(1)), None, None),
            KeyEntry::new(
                "v1",
                v1.clone(),
                Some(UNIX_EPOCH),
                Some(now - Duration::from_secs(1)),
                None,
            ),
        ],
        now,
        &KeyStrength::any_non_empty(),
    )
    .unwrap()
}
