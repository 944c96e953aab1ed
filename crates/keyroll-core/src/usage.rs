//! Per-key usage counts that cost a verification no shared write.
//!
//! A single `AtomicU64` per key would be written by every core that verifies
//! with that key: the cache line holding it would move between cores on every
//! call and serialize verification of the current key across the machine.
//! Instead each thread counts in a slot of its own (one cache line each, from
//! `thread_local::ThreadLocal`, which reuses a slot only once its thread has
//! exited), and a read sums the slots.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use thread_local::ThreadLocal;

/// Aligned to 128 bytes: two cache lines, because adjacent-line prefetchers
/// fetch lines in pairs, so neighbouring slots never share a prefetched pair.
#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

/// How many times a key verified, counted per thread and summed on read.
#[derive(Default)]
pub(crate) struct UsageCounter {
    slots: ThreadLocal<Slot>,
}

impl UsageCounter {
    /// Counts one use. Only the calling thread ever writes its slot, so a
    /// plain load and store (no locked read-modify-write) cannot lose a count.
    pub(crate) fn record(&self) {
        let slot = &self.slots.get_or_default().0;
        slot.store(slot.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// The sum over every thread that ever counted.
    pub(crate) fn total(&self) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |sum, slot| sum.wrapping_add(slot.0.load(Ordering::Relaxed)))
    }
}

impl fmt::Debug for UsageCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UsageCounter").field(&self.total()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_thread_add_up() {
        let counter = UsageCounter::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        counter.record();
                    }
                });
            }
        });
        counter.record();
        assert_eq!(counter.total(), 80_001);
    }

    #[test]
    fn counts_of_exited_threads_are_kept() {
        let counter = UsageCounter::default();
        for _ in 0..3 {
            std::thread::scope(|scope| {
                scope.spawn(|| counter.record());
            });
        }
        assert_eq!(counter.total(), 3);
    }

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 128);
    }
}
