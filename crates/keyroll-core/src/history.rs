//! "Can key X be retired?": verifications per fallback key over a recent
//! window, from samples of the per-key counters.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::{Keyring, Role};

/// Samples a keyring's per-key verification counts and tells, for each
/// fallback key, how many tokens it verified within the last `window`.
///
/// Take a sample now and then ([`sample`](Self::sample): from a timer, a
/// metrics scrape or a status page); [`fallback_usage`](Self::fallback_usage)
/// samples too. A fallback key with no verification over a window as long as
/// the longest-lived token it could have signed is safe to retire.
///
/// ```
/// use std::time::Duration;
/// use keyroll_core::{KeyMaterial, KeySet, Keyring, UsageHistory};
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let history = UsageHistory::new(keyring, Duration::from_secs(3600));
/// assert!(history.fallback_usage().is_empty(), "one key, no fallback");
/// ```
pub struct UsageHistory {
    keyring: Keyring,
    window: Duration,
    samples: Mutex<VecDeque<Sample>>,
}

struct Sample {
    at: Instant,
    totals: Vec<(Arc<str>, u64)>,
}

/// How much one fallback key was used within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FallbackUsage {
    /// The key's version id.
    pub id: String,
    /// Verifications within the window.
    pub verifications: u64,
    /// The span the count covers: the window, or less while the history is
    /// younger than the window.
    pub over: Duration,
    /// Verifications since the key entered the keyring.
    pub total: u64,
}

impl UsageHistory {
    /// A history of `keyring` over `window`, with a first sample taken now.
    pub fn new(keyring: Keyring, window: Duration) -> Self {
        let history = Self {
            keyring,
            window,
            samples: Mutex::new(VecDeque::new()),
        };
        history.sample();
        history
    }

    /// Records every key's count now and forgets samples the window no
    /// longer needs.
    pub fn sample(&self) {
        self.sample_at(Instant::now());
    }

    fn sample_at(&self, at: Instant) {
        let set = self.keyring.key_set();
        let totals = set
            .keys()
            .iter()
            .map(|key| (key.shared_id(), key.verifications()))
            .collect();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back(Sample { at, totals });
        while samples
            .front()
            .is_some_and(|oldest| at.saturating_duration_since(oldest.at) > self.window)
        {
            samples.pop_front();
        }
    }

    /// Samples now, then lists each fallback key with its verifications
    /// since the oldest sample that is at most the window old.
    pub fn fallback_usage(&self) -> Vec<FallbackUsage> {
        self.usage_at(Instant::now())
    }

    fn usage_at(&self, now: Instant) -> Vec<FallbackUsage> {
        self.sample_at(now);
        let set = self.keyring.key_set();
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let baseline = samples
            .iter()
            .find(|s| now.saturating_duration_since(s.at) <= self.window)
            .expect("a sample was just taken");
        let wall = SystemTime::now();
        set.keys()
            .iter()
            .filter(|key| key.role_at(wall) == Role::Fallback)
            .map(|key| {
                let total = key.verifications();
                let before = baseline
                    .totals
                    .iter()
                    .find(|(id, _)| **id == *key.id())
                    .map_or(0, |(_, n)| *n);
                FallbackUsage {
                    id: key.id().to_owned(),
                    verifications: total.saturating_sub(before),
                    over: now.saturating_duration_since(baseline.at),
                    total,
                }
            })
            .collect()
    }
}

impl fmt::Debug for UsageHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageHistory")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, KeyEntry, KeyMaterial, KeySet};

    fn rotated() -> Keyring {
        let epoch = SystemTime::UNIX_EPOCH;
        let material = |i: u8| KeyMaterial::from(format!("usage-history-test-key-{i}-0123456789abcdefghij"));
        Keyring::new(
            KeySet::new(
                vec![
                    KeyEntry::new("new", material(1), Some(epoch), None, None),
                    KeyEntry::new("old", material(2), Some(epoch), Some(epoch), None),
                ],
                SystemTime::now(),
            )
            .unwrap(),
        )
    }

    fn record(keyring: &Keyring, id: &str, times: usize) {
        let set = keyring.key_set();
        for _ in 0..times {
            set.key(id)
                .unwrap()
                .record_verification(Format::Native, Role::Fallback);
        }
    }

    #[test]
    fn a_fallback_key_counts_only_what_it_verified_within_the_window() {
        let keyring = rotated();
        record(&keyring, "old", 5);
        let window = Duration::from_secs(60);
        let history = UsageHistory::new(keyring.clone(), window);
        let start = Instant::now();
        record(&keyring, "old", 2);
        history.sample_at(start + Duration::from_secs(30));
        record(&keyring, "old", 1);
        // At 70 s the first sample (before the 2) has left the window; the
        // baseline is the sample at 30 s.
        let usage = history.usage_at(start + Duration::from_secs(70));
        assert_eq!(
            history.samples.lock().unwrap().len(),
            2,
            "the sample at 0 s is forgotten"
        );
        assert_eq!(usage.len(), 1, "only the fallback key is listed");
        assert_eq!(usage[0].id, "old");
        assert_eq!((usage[0].verifications, usage[0].total), (1, 8));
        assert_eq!(usage[0].over, Duration::from_secs(40));
    }

    #[test]
    fn an_unused_fallback_key_shows_zero() {
        let keyring = rotated();
        record(&keyring, "old", 4);
        let history = UsageHistory::new(keyring, Duration::from_secs(3600));
        let usage = history.fallback_usage();
        assert_eq!((usage[0].verifications, usage[0].total), (0, 4));
    }
}
