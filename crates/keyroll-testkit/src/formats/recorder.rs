//! Counts `keyroll_rejections_total` through a `metrics` recorder local to
//! the calling thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keyroll_core::Format;
use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// The rejections counted while a closure ran, by `(format, reason)`.
#[derive(Debug, Default)]
pub(super) struct Rejections(BTreeMap<(String, String), u64>);

#[derive(Default)]
struct Counts(Mutex<BTreeMap<(String, String), Arc<Count>>>);

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() != "keyroll_rejections_total" {
            return Counter::noop();
        }
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        let mut counts = self.0.lock().expect("not poisoned");
        let count = counts.entry((label("format"), label("reason"))).or_default();
        Counter::from_arc(Arc::clone(count))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

impl Rejections {
    /// What `during` counted.
    pub(super) fn during(during: impl FnOnce()) -> Self {
        let counts = Counts::default();
        metrics::with_local_recorder(&counts, during);
        let counts = counts.0.into_inner().expect("not poisoned");
        Self(
            counts
                .into_iter()
                .map(|(labels, count)| (labels, count.0.load(Ordering::Relaxed)))
                .filter(|&(_, count)| count > 0)
                .collect(),
        )
    }

    /// Exactly one rejection, of `format`, for `reason`.
    pub(super) fn assert_once(&self, format: Format, reason: &str) {
        let expected = BTreeMap::from([((format.name().to_owned(), reason.to_owned()), 1)]);
        assert_eq!(self.0, expected, "{format}: one refusal, counted once");
    }

    /// Exactly one rejection, of `format`, whatever its reason.
    pub(super) fn assert_one(&self, format: Format) {
        let total: u64 = self.0.values().sum();
        assert_eq!(total, 1, "{format}: one refusal, counted once: {:?}", self.0);
        assert!(
            self.0.keys().all(|(f, _)| f == format.name()),
            "{format}: counted for its format: {:?}",
            self.0
        );
    }

    /// No rejection at all.
    pub(super) fn assert_none(&self, format: Format) {
        assert!(
            self.0.is_empty(),
            "{format}: an accepted token is not counted: {:?}",
            self.0
        );
    }
}
