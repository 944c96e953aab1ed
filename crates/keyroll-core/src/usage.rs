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

use crate::Role;

/// The token format a verification was for, so usage can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// keyroll's native tokens.
    Native,
    /// Django-compatible signing (`keyroll-django`).
    Django,
    /// Fernet tokens (`keyroll-fernet`).
    Fernet,
    /// JSON Web Tokens (`keyroll-jwt`).
    Jwt,
    /// Flask session cookies (`keyroll-flask`).
    Flask,
    /// Any other format built on a key set.
    Other,
}

impl Format {
    /// Every format, in counter order.
    pub const ALL: [Format; 6] = [
        Self::Native,
        Self::Django,
        Self::Fernet,
        Self::Jwt,
        Self::Flask,
        Self::Other,
    ];

    /// Its name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Django => "django",
            Self::Fernet => "fernet",
            Self::Jwt => "jwt",
            Self::Flask => "flask",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Counts one token of `format` refused for `reason`, as
/// `keyroll_rejections_total{format, reason}`, when the `metrics` feature is
/// on; does nothing otherwise.
///
/// A format calls it once per refused token, where the refusal leaves its
/// public API (never where one public call passes on another's refusal), so
/// no token is counted twice. Accepted tokens never reach it: the hot path
/// pays nothing.
#[inline]
pub fn record_rejection(format: Format, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("keyroll_rejections_total", "format" => format.name(), "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (format, reason);
}

/// Counts one cookie set again with the current key because a superseded
/// key verified it, as `keyroll_cookies_reissued_total{kind}`, when the
/// `metrics` feature is on; does nothing otherwise.
#[inline]
pub fn record_reissue(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("keyroll_cookies_reissued_total", "kind" => kind).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// The roles a key verifies in, in counter order.
pub(crate) const VERIFYING_ROLES: [Role; 3] = [Role::Current, Role::Pending, Role::Fallback];

const COUNTS: usize = Format::ALL.len() * VERIFYING_ROLES.len();

fn index(format: Format, role: Role) -> usize {
    let format = match format {
        Format::Native => 0,
        Format::Django => 1,
        Format::Fernet => 2,
        Format::Jwt => 3,
        Format::Flask => 4,
        Format::Other => 5,
    };
    let role = match role {
        Role::Current => 0,
        Role::Pending => 1,
        // A retired key never verifies; count it with the fallbacks it was.
        Role::Fallback | Role::Retired => 2,
    };
    format * VERIFYING_ROLES.len() + role
}

/// Aligned to 128 bytes: two cache lines, because adjacent-line prefetchers
/// fetch lines in pairs, so neighbouring slots never share a prefetched pair.
/// One count per format and role (96 bytes).
#[repr(align(128))]
#[derive(Default)]
struct Slot([AtomicU64; COUNTS]);

/// How many times a key verified, counted per thread and summed on read.
#[derive(Default)]
pub(crate) struct UsageCounter {
    slots: ThreadLocal<Slot>,
}

impl UsageCounter {
    /// Counts one use. Only the calling thread ever writes its slot, so a
    /// plain load and store (no locked read-modify-write) cannot lose a count.
    #[inline]
    pub(crate) fn record(&self, format: Format, role: Role) {
        // `get` (inlined) first: `get_or_default` is an out-of-line call
        // that only a thread's first count needs.
        let slot = match self.slots.get() {
            Some(slot) => slot,
            None => self.slots.get_or_default(),
        };
        let count = &slot.0[index(format, role)];
        count.store(count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// The sum over every thread that ever counted, of every format and role.
    pub(crate) fn total(&self) -> u64 {
        self.slots.iter().fold(0u64, |sum, slot| {
            slot.0
                .iter()
                .fold(sum, |sum, count| sum.wrapping_add(count.load(Ordering::Relaxed)))
        })
    }

    /// The sum over every thread for one format and role.
    pub(crate) fn of(&self, format: Format, role: Role) -> u64 {
        let i = index(format, role);
        self.slots.iter().fold(0u64, |sum, slot| {
            sum.wrapping_add(slot.0[i].load(Ordering::Relaxed))
        })
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
                        counter.record(Format::Native, Role::Current);
                    }
                });
            }
        });
        counter.record(Format::Django, Role::Fallback);
        assert_eq!(counter.total(), 80_001);
        assert_eq!(counter.of(Format::Native, Role::Current), 80_000);
        assert_eq!(counter.of(Format::Django, Role::Fallback), 1);
        assert_eq!(counter.of(Format::Django, Role::Current), 0);
    }

    #[test]
    fn counts_of_exited_threads_are_kept() {
        let counter = UsageCounter::default();
        for _ in 0..3 {
            std::thread::scope(|scope| {
                scope.spawn(|| counter.record(Format::Fernet, Role::Pending));
            });
        }
        assert_eq!(counter.total(), 3);
    }

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 128);
    }
}
