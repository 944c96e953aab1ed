//! The live key set every signer reads: lock-free, swapped whole.

use std::cell::{Ref, RefCell};
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, Guard};
use thread_local::ThreadLocal;
use tokio::sync::watch;

use crate::{KeySet, Role, RoleSnapshot};

/// Why a keyring serves no key at all. The one rule every door reads (each
/// format's sign and verify, the Python package's keys and settings, the
/// agent's file): once a keyring is closed, nothing signs and nothing
/// verifies, and the first good key set from the store reopens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Closed {
    /// The keyring failed closed: the store has not confirmed the keys for
    /// longer than the configured limit, or it revoked the signing key and
    /// offered no usable replacement ([`Keyring::is_closed`]).
    #[error(
        "the keyring has failed closed (the store has not confirmed the keys within the limit, or revoked the signing key); nothing signs or verifies until the store offers a usable key"
    )]
    FailedClosed,
    /// Every key that could sign is past its explicit expiry
    /// ([`KeySet::serves_at`]).
    #[error(
        "no key may serve: every key that could sign is past its expiry; nothing signs or verifies until the store offers a usable key"
    )]
    Expired,
}

/// The key set in force, shared by every signer of a service.
///
/// Reads never wait: [`load`](Keyring::load) is an `arc-swap` load. A
/// [`Refresher`](crate::Refresher) builds each new set completely, then swaps
/// it in; verifications already running finish with the set they loaded.
/// Cloning a `Keyring` is cheap and every clone sees the same keys.
#[derive(Clone)]
pub struct Keyring {
    shared: Arc<Shared>,
}

struct Shared {
    current: ArcSwap<KeySet>,
    generation: AtomicU64,
    /// Twice the generation of the set in place, plus one while an install
    /// is in progress (a sequence lock): see [`Keyring::settled_generation`].
    sequence: AtomicU64,
    /// Forced closed: the signing key was revoked and nothing may replace it.
    closed: AtomicBool,
    /// Milliseconds after `born` from which the keyring counts as closed
    /// (the stale limit), `u64::MAX` for never. A deadline rather than a flag
    /// set by the refresher, so the limit applies even when no refresher runs
    /// any more.
    closes_at: AtomicU64,
    born: Instant,
    /// Why no refresher keeps this keyring current any more, once so.
    stopped: OnceLock<String>,
    changes: watch::Sender<u64>,
    writer: Mutex<()>,
}

impl Keyring {
    /// A keyring holding `initial` as generation 1.
    pub fn new(mut initial: KeySet) -> Self {
        initial.set_generation(1);
        let (changes, _) = watch::channel(1);
        Self {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(initial),
                generation: AtomicU64::new(1),
                sequence: AtomicU64::new(2),
                closed: AtomicBool::new(false),
                closes_at: AtomicU64::new(u64::MAX),
                born: Instant::now(),
                stopped: OnceLock::new(),
                changes,
                writer: Mutex::new(()),
            }),
        }
    }

    /// The current key set, without taking a lock or touching a reference
    /// count. Hold the guard only briefly (for one sign or verify).
    pub fn load(&self) -> Guard<Arc<KeySet>> {
        self.shared.current.load()
    }

    /// The current key set, as an owned `Arc` to keep.
    pub fn key_set(&self) -> Arc<KeySet> {
        self.shared.current.load_full()
    }

    /// The generation of the current set: 1 for the initial set, one more for
    /// each swap.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The generation of the set in place, read with one atomic load, or
    /// `None` while a swap is in progress. Unlike
    /// [`generation`](Keyring::generation), which moves a hair after the new
    /// set can be [loaded](Keyring::load), it is never older than a set
    /// another thread has already loaded: a reader that keeps what it derived
    /// from one generation and compares this before using it never serves the
    /// previous set after the swap was seen anywhere.
    #[inline]
    pub fn settled_generation(&self) -> Option<u64> {
        let sequence = self.shared.sequence.load(Ordering::Acquire);
        sequence.is_multiple_of(2).then_some(sequence / 2)
    }

    /// Swaps in `next`, carrying per-key verification counters over, and
    /// returns its generation. Subscribers are told afterwards.
    pub fn install(&self, mut next: KeySet) -> u64 {
        let _writer = self.shared.writer.lock().unwrap_or_else(|e| e.into_inner());
        let previous = self.shared.current.load();
        let generation = previous.generation() + 1;
        next.carry_counters_from(&previous);
        next.set_generation(generation);
        // Odd before the new set can be seen, even again once the counter
        // has caught up with it.
        self.shared
            .sequence
            .store(generation.saturating_mul(2).saturating_sub(1), Ordering::Release);
        self.shared.current.store(Arc::new(next));
        self.shared.generation.store(generation, Ordering::Release);
        self.shared
            .sequence
            .store(generation.saturating_mul(2), Ordering::Release);
        self.shared.changes.send_replace(generation);
        generation
    }

    /// True while the keyring has failed closed, so signers refuse every
    /// verification: its refresher could not confirm the keys with the store
    /// for longer than the configured limit
    /// ([`RefresherBuilder::fail_closed_after`](crate::RefresherBuilder::fail_closed_after)),
    /// or the store revoked the signing key and offered no usable replacement.
    /// The stale limit is a deadline kept here, so it applies even when the
    /// refresher has stopped.
    #[inline]
    pub fn is_closed(&self) -> bool {
        if self.shared.closed.load(Ordering::Relaxed) {
            return true;
        }
        let closes_at = self.shared.closes_at.load(Ordering::Relaxed);
        closes_at != u64::MAX && millis(self.shared.born.elapsed()) >= closes_at
    }

    /// The key set in force at `now`, or why nothing may sign or verify:
    /// [`Closed::FailedClosed`] while [`is_closed`](Keyring::is_closed),
    /// [`Closed::Expired`] when the set no longer
    /// [serves](KeySet::serves_at) (its refresher fails it closed at that
    /// moment; this holds even before it does, and without a refresher).
    #[inline]
    pub fn serving_at(&self, now: SystemTime) -> Result<Guard<Arc<KeySet>>, Closed> {
        if self.is_closed() {
            return Err(Closed::FailedClosed);
        }
        let set = self.load();
        if !set.serves_at(now) {
            return Err(Closed::Expired);
        }
        Ok(set)
    }

    /// The position in `set.keys()` (a set this keyring holds) of the key
    /// that signs at `now`, or why nothing may sign: the rule every format's
    /// sign applies (as [`serving_at`](Self::serving_at) is the rule of every
    /// read). Formats index their per-key state with it.
    ///
    /// # Errors
    /// [`Closed::FailedClosed`] once the keyring has failed closed;
    /// [`Closed::Expired`] when the key that would sign is past its expiry.
    pub fn signing_position(&self, set: &KeySet, now: SystemTime) -> Result<usize, Closed> {
        if self.is_closed() {
            return Err(Closed::FailedClosed);
        }
        let key = set.signing_key_at(now);
        if key.role_at(now) == Role::Retired {
            return Err(Closed::Expired);
        }
        Ok(set
            .keys()
            .iter()
            .position(|entry| std::ptr::eq(entry, key))
            .expect("the signing key is one of the set's keys"))
    }

    /// Forces the keyring closed (or lifts that), independently of the stale
    /// deadline. Subscribers are told when that closes or reopens it.
    pub(crate) fn set_closed(&self, closed: bool) {
        let was_closed = self.is_closed();
        self.shared.closed.store(closed, Ordering::Relaxed);
        self.tell_if_reopened_or_closed(was_closed);
    }

    /// The keys were confirmed now: the keyring closes if they are not
    /// confirmed again within `limit` (never with `None`). Subscribers are
    /// told when that reopens a keyring the stale limit had closed.
    pub(crate) fn confirmed(&self, limit: Option<Duration>) {
        let was_closed = self.is_closed();
        let closes_at = limit.map_or(u64::MAX, |limit| {
            millis(self.shared.born.elapsed()).saturating_add(millis(limit))
        });
        self.shared.closes_at.store(closes_at, Ordering::Relaxed);
        self.tell_if_reopened_or_closed(was_closed);
    }

    /// Wakes subscribers (with the same generation) when the keyring's
    /// closed state is no longer `was_closed`.
    fn tell_if_reopened_or_closed(&self, was_closed: bool) {
        if self.is_closed() != was_closed {
            self.shared.changes.send_modify(|_| {});
        }
    }

    /// The next moment after `now` at which what
    /// [`serving_at`](Self::serving_at) answers may change with no new key
    /// set and no word from the refresher: a key's activation or expiry in
    /// the set in place, or the stale limit's deadline. With
    /// [`subscribe`](Self::subscribe), which wakes on every swap, on a
    /// revocation closing the keyring and on it reopening, this is what a
    /// binding that hands out plain data (a Node array of secrets) needs to
    /// keep that data to the core's rule without reading the keyring at each
    /// use. The deadline is a moment of the system clock however far `now`
    /// lies from it.
    pub fn next_change_after(&self, now: SystemTime) -> Option<SystemTime> {
        let transition = self.load().next_transition_after(now);
        let closes_at = self.shared.closes_at.load(Ordering::Relaxed);
        let deadline = (closes_at != u64::MAX && !self.is_closed()).then(|| {
            let left = closes_at.saturating_sub(millis(self.shared.born.elapsed()));
            let wall = SystemTime::now();
            wall.checked_add(Duration::from_millis(left)).unwrap_or(wall)
        });
        match (transition, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Why no refresher keeps this keyring current any more (its last
    /// handle was dropped without [`shutdown`](crate::Refresher::shutdown),
    /// its task ended, or it was shut down), or `None` while one does.
    /// Signers keep serving the frozen keys; health checks should not.
    pub fn stopped(&self) -> Option<&str> {
        self.shared.stopped.get().map(String::as_str)
    }

    /// Records why the refresher stopped; the first reason wins.
    pub(crate) fn set_stopped(&self, reason: String) {
        let _ = self.shared.stopped.set(reason);
    }

    /// A receiver that wakes on every swap with the new generation, and
    /// (with the generation unchanged) when a revocation closes the keyring
    /// or the store's answer reopens it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("generation", &self.generation())
            .field("closed", &self.is_closed())
            .field("stopped", &self.stopped())
            .field("keys", &self.load().keys())
            .finish()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Per-purpose state derived from a key set (per-salt HMAC keys, cipher keys),
/// rebuilt once when the keyring's generation changes and never per call.
///
/// Signers hold one. `cache.get(&keyring)` reads the calling thread's own
/// reference to the derived state and compares one generation: no atomic
/// read-modify-write and no write to memory another thread reads, so
/// verifications on many cores do not slow each other down. The state is
/// derived once per generation (shared by all threads through `arc-swap`);
/// each thread picks it up on its first call after a swap, and until then
/// keeps the generation it last used alive.
pub struct DerivedCache<T: Send + Sync> {
    current: ArcSwap<Derived<T>>,
    local: ThreadLocal<Local<T>>,
    derive: Box<dyn Fn(&KeySet) -> T + Send + Sync>,
}

/// One thread's reference, on cache lines of its own.
#[repr(align(128))]
struct Local<T>(RefCell<Arc<Derived<T>>>);

/// A key set together with what was derived from it.
#[derive(Debug)]
pub struct Derived<T> {
    /// The key set the state was derived from.
    pub keys: Arc<KeySet>,
    /// The derived state, in the same order as `keys.keys()` where it is per key.
    pub state: T,
    /// The keys' roles until the set's next transition
    /// ([`RoleSnapshot::now`] gives the roles for a call).
    pub roles: RoleSnapshot,
    /// `keys.generation()`, here so that the check on every call is one
    /// load from the thread's slot rather than two dependent ones.
    generation: u64,
}

impl<T> Derived<T> {
    fn new(keys: Arc<KeySet>, state: T, roles: RoleSnapshot) -> Self {
        let generation = keys.generation();
        Self {
            keys,
            state,
            roles,
            generation,
        }
    }
}

/// The derived state for one call, borrowed from the calling thread's slot.
pub struct DerivedRef<'a, T>(DerivedRefInner<'a, T>);

enum DerivedRefInner<'a, T> {
    Local(Ref<'a, Arc<Derived<T>>>),
    /// Only when the thread's slot is already borrowed by an outer call
    /// on the same thread and a swap happened in between.
    Shared(Arc<Derived<T>>),
}

impl<T> Deref for DerivedRef<'_, T> {
    type Target = Derived<T>;

    fn deref(&self) -> &Derived<T> {
        match &self.0 {
            DerivedRefInner::Local(local) => local,
            DerivedRefInner::Shared(shared) => shared,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for DerivedRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Send + Sync + 'static> DerivedCache<T> {
    /// A cache that derives with `derive`, filled from `keyring` at once.
    pub fn new(keyring: &Keyring, derive: impl Fn(&KeySet) -> T + Send + Sync + 'static) -> Self {
        let keys = keyring.key_set();
        let state = derive(&keys);
        let roles = RoleSnapshot::of(&keys);
        Self {
            current: ArcSwap::from_pointee(Derived::new(keys, state, roles)),
            local: ThreadLocal::new(),
            derive: Box::new(derive),
        }
    }

    /// The derived state for the keyring's current generation.
    #[inline]
    pub fn get(&self, keyring: &Keyring) -> DerivedRef<'_, T> {
        let generation = keyring.generation();
        let local = &self.local.get_or(|| Local(RefCell::new(self.shared(keyring)))).0;
        {
            let current = local.borrow();
            if current.generation == generation {
                return DerivedRef(DerivedRefInner::Local(current));
            }
        }
        let fresh = self.shared(keyring);
        match local.try_borrow_mut() {
            Ok(mut slot) => *slot = fresh,
            Err(_) => return DerivedRef(DerivedRefInner::Shared(fresh)),
        }
        DerivedRef(DerivedRefInner::Local(local.borrow()))
    }

    /// The state all threads share, derived again if the keyring moved on.
    fn shared(&self, keyring: &Keyring) -> Arc<Derived<T>> {
        let cached = self.current.load();
        if cached.generation == keyring.generation() {
            return Guard::into_inner(cached);
        }
        drop(cached);
        let keys = keyring.key_set();
        let state = (self.derive)(&keys);
        let roles = RoleSnapshot::of(&keys);
        let derived = Arc::new(Derived::new(keys, state, roles));
        self.current.store(Arc::clone(&derived));
        derived
    }
}

impl<T: Send + Sync> fmt::Debug for DerivedCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivedCache")
            .field("generation", &self.current.load().keys.generation())
            .finish_non_exhaustive()
    }
}
