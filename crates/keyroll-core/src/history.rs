//! "Can key X be retired?": verifications per fallback key over a recent
//! window, from samples of the per-key counters.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::{KeySet, Keyring, Role};

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
    window: Mutex<UsageWindow>,
}

/// Verifications per key over a sliding window, from samples of cumulative
/// counts: this process's own counters (what [`UsageHistory`] feeds it) or
/// the counts another process exports (`keyroll watch --metrics` feeds it
/// from a service's `keyroll_verifications_total`).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use keyroll_core::UsageWindow;
///
/// let mut window = UsageWindow::new(Duration::from_secs(60));
/// let start = Instant::now();
/// window.sample(start, [(Arc::from("v1"), 10)]);
/// window.sample(start + Duration::from_secs(30), [(Arc::from("v1"), 12)]);
/// assert_eq!(window.within("v1"), Some((2, Duration::from_secs(30))));
/// ```
///
/// It holds at most 258 samples however often it is fed: a sample that
/// follows the one before it by less than a 256th of the window is replaced
/// by the next one, so counts stay exact and the span they cover is short of
/// the window by at most that.
#[derive(Debug)]
pub struct UsageWindow {
    window: Duration,
    samples: VecDeque<Sample>,
}

#[derive(Debug)]
struct Sample {
    at: Instant,
    totals: Vec<(Arc<str>, u64)>,
}

impl Sample {
    fn total(&self, id: &str) -> u64 {
        self.totals
            .iter()
            .find(|(key, _)| **key == *id)
            .map_or(0, |(_, n)| *n)
    }
}

/// About how many samples a [`UsageWindow`] holds at most (it may hold two
/// more): enough that the span a count covers is within 0.4 % of the window.
const MAX_SAMPLES: usize = 256;

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

impl UsageWindow {
    /// An empty window of `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Its length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records the cumulative count of each key id at `at` (a key left out
    /// counts 0), and forgets the samples the window no longer needs.
    pub fn sample(&mut self, at: Instant, totals: impl IntoIterator<Item = (Arc<str>, u64)>) {
        // The newest sample is only ever a future baseline: drop it when it
        // is too close to the one before, which keeps the kept samples a
        // step apart and their number bounded.
        let step = self.window / u32::try_from(MAX_SAMPLES).unwrap_or(u32::MAX);
        let len = self.samples.len();
        if len >= 2
            && self.samples[len - 1]
                .at
                .saturating_duration_since(self.samples[len - 2].at)
                < step
        {
            self.samples.pop_back();
        }
        self.samples.push_back(Sample {
            at,
            totals: totals.into_iter().collect(),
        });
        while self
            .samples
            .front()
            .is_some_and(|oldest| at.saturating_duration_since(oldest.at) > self.window)
        {
            self.samples.pop_front();
        }
    }

    /// Verifications of key `id` from the oldest sample that is at most the
    /// window older than the newest to the newest, and the span between
    /// them; `None` before the first sample. A count that went down (the
    /// counting process restarted) counts from 0 again.
    pub fn within(&self, id: &str) -> Option<(u64, Duration)> {
        let (baseline, newest) = self.ends()?;
        Some(used(baseline, newest, id))
    }

    /// Key `id`'s count in the newest sample; `None` before the first.
    pub fn latest(&self, id: &str) -> Option<u64> {
        self.samples.back().map(|newest| newest.total(id))
    }

    /// The oldest sample at most the window older than the newest, and the
    /// newest.
    fn ends(&self) -> Option<(&Sample, &Sample)> {
        let newest = self.samples.back()?;
        let baseline = self
            .samples
            .iter()
            .find(|s| newest.at.saturating_duration_since(s.at) <= self.window)?;
        Some((baseline, newest))
    }

    /// Each key of `set` that is a fallback at `wall`, with its
    /// verifications [`within`](Self::within) the window and its total in
    /// the newest sample; empty before the first sample.
    pub fn fallback_usage(&self, set: &KeySet, wall: SystemTime) -> Vec<FallbackUsage> {
        let Some((baseline, newest)) = self.ends() else {
            return Vec::new();
        };
        set.keys()
            .iter()
            .filter(|key| key.role_at(wall) == Role::Fallback)
            .map(|key| {
                let (verifications, over) = used(baseline, newest, key.id());
                FallbackUsage {
                    id: key.id().to_owned(),
                    verifications,
                    over,
                    total: newest.total(key.id()),
                }
            })
            .collect()
    }
}

/// Verifications of key `id` from `baseline` to `newest`, and the span
/// between them. A count that went down (the counting process restarted)
/// counts from 0 again.
fn used(baseline: &Sample, newest: &Sample, id: &str) -> (u64, Duration) {
    let (now, before) = (newest.total(id), baseline.total(id));
    let verifications = if now >= before { now - before } else { now };
    (verifications, newest.at.saturating_duration_since(baseline.at))
}

impl UsageHistory {
    /// A history of `keyring` over `window`, with a first sample taken now.
    pub fn new(keyring: Keyring, window: Duration) -> Self {
        let history = Self {
            keyring,
            window: Mutex::new(UsageWindow::new(window)),
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
            .map(|key| (key.shared_id(), key.verifications()));
        self.lock().sample(at, totals);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UsageWindow> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples now, then lists each fallback key with its verifications
    /// since the oldest sample that is at most the window old.
    pub fn fallback_usage(&self) -> Vec<FallbackUsage> {
        self.usage_at(Instant::now())
    }

    fn usage_at(&self, now: Instant) -> Vec<FallbackUsage> {
        self.sample_at(now);
        self.lock()
            .fallback_usage(&self.keyring.key_set(), SystemTime::now())
    }
}

impl fmt::Debug for UsageHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageHistory")
            .field("window", &self.lock().window())
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
        assert_eq!(history.lock().samples.len(), 2, "the sample at 0 s is forgotten");
        assert_eq!(usage.len(), 1, "only the fallback key is listed");
        assert_eq!(usage[0].id, "old");
        assert_eq!((usage[0].verifications, usage[0].total), (1, 8));
        assert_eq!(usage[0].over, Duration::from_secs(40));
    }

    #[test]
    fn a_restarted_counter_counts_from_zero_and_old_samples_leave_the_window() {
        let mut window = UsageWindow::new(Duration::from_secs(60));
        assert_eq!(window.within("v1"), None, "no sample yet");
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        window.sample(at(0), [(Arc::from("v1"), 100)]);
        window.sample(at(50), [(Arc::from("v1"), 7)]);
        assert_eq!(window.within("v1"), Some((7, Duration::from_secs(50))));
        window.sample(at(100), [(Arc::from("v1"), 9), (Arc::from("v2"), 3)]);
        assert_eq!(window.samples.len(), 2, "the sample at 0 s is forgotten");
        assert_eq!(window.within("v1"), Some((2, Duration::from_secs(50))));
        assert_eq!(window.within("v2"), Some((3, Duration::from_secs(50))));
    }

    /// Issue 24 item 6: `keyroll watch --metrics` kept every sample of the
    /// window (one every 300 ms for an hour).
    #[test]
    fn a_window_fed_often_holds_a_bounded_number_of_samples_and_exact_counts() {
        let window = Duration::from_secs(3600);
        let mut usage = UsageWindow::new(window);
        let start = Instant::now();
        let every = Duration::from_millis(300);
        for i in 0..40_000u32 {
            usage.sample(start + every * i, [(Arc::from("v1"), u64::from(i))]);
            assert!(
                usage.samples.len() <= MAX_SAMPLES + 2,
                "{} samples at {i}",
                usage.samples.len()
            );
        }
        let (count, over) = usage.within("v1").unwrap();
        let step = window / u32::try_from(MAX_SAMPLES).unwrap();
        assert!(over <= window && over + step + every >= window, "{over:?}");
        // One verification per sample: the count is the span in samples.
        assert_eq!(u128::from(count), over.as_millis() / every.as_millis());
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
