//! Roles of a key set's keys, computed once per key-set generation.
//!
//! A key's role is a function of time, but between two transitions of a set
//! (an activation, the end of a signing or fallback window) it does not
//! change. So the roles are computed once, with the moment of the set's next
//! transition; a verify then only checks, with a cheap coarse clock, that this
//! moment is still ahead. Past it (a refresher that is late to install the
//! next generation, or none at all) the roles are computed exactly from the
//! wall clock, as before: a retired key never verifies.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{KeySet, Role};

/// The roles of a set's keys between the moment they were computed and the
/// set's next transition.
#[derive(Debug, Clone)]
pub struct RoleSnapshot {
    roles: Box<[Role]>,
    /// The keys that verify, in the order to try them (`RolesNow::verifying`).
    order: Box<[(usize, Role)]>,
    signing: usize,
    /// Until the set's next transition.
    holds: Deadline,
}

/// A moment ahead, checked with a cheap coarse clock that never says it is
/// still ahead once it has passed: it holds while the coarse clock is at or
/// after its start and before the moment less the clock's error. What a
/// generation's roles ([`RoleSnapshot`]) and Python's `settings.SECRET_KEY`
/// check instead of reading the wall clock on every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// Coarse-clock nanoseconds since the epoch: it holds while
    /// `from <= now < until` (`until` already less the coarse clock's error).
    from: u64,
    until: u64,
}

impl Deadline {
    /// From now until `at`; `None`: for ever (nothing ahead changes).
    pub fn until(at: Option<SystemTime>) -> Self {
        Self {
            from: coarse::now(),
            until: at.map_or(u64::MAX, |at| {
                nanos_since_epoch(at).saturating_sub(coarse::error())
            }),
        }
    }

    /// Whether the moment is still ahead. A deadline for ever needs no clock
    /// read; past the moment (or a wall clock set back before the start) it
    /// is false, and the caller computes from the exact wall clock.
    #[inline]
    pub fn holds(&self) -> bool {
        if self.until == u64::MAX {
            return true;
        }
        let now = coarse::now();
        self.from <= now && now < self.until
    }
}

/// The roles in force for one call: the snapshot's, or computed exactly at a
/// wall-clock moment.
#[derive(Debug, Clone, Copy)]
pub enum RolesNow<'a> {
    /// The generation's snapshot holds.
    Snapshot(&'a RoleSnapshot),
    /// Computed from each key's windows at this moment.
    At(&'a KeySet, SystemTime),
}

impl RoleSnapshot {
    /// The roles of `set`'s keys now, valid until its next transition.
    pub fn of(set: &KeySet) -> Self {
        let now = SystemTime::now();
        let holds = Deadline::until(set.next_transition_after(now));
        let roles: Box<[Role]> = set.keys().iter().map(|key| key.role_at(now)).collect();
        let order = Verifying::at(set, now).collect();
        Self {
            roles,
            order,
            signing: signing_index(set, now),
            holds,
        }
    }

    /// The roles for a call now: this snapshot while it holds, otherwise
    /// computed exactly from the wall clock.
    ///
    /// A set with no transition ahead (one key, or fallbacks without an end)
    /// needs no clock read at all: its roles can change only if the wall
    /// clock is set back before the snapshot, and a key retired now was
    /// retired at every earlier moment too (a key's verifying window only
    /// ends), so the snapshot never accepts a key the exact roles would
    /// refuse; only the role it reports for a non-retired key could differ.
    #[inline]
    pub fn now<'a>(&'a self, set: &'a KeySet) -> RolesNow<'a> {
        if self.holds.holds() {
            RolesNow::Snapshot(self)
        } else {
            RolesNow::At(set, SystemTime::now())
        }
    }
}

impl<'a> RolesNow<'a> {
    /// The role of the key at `index` of the set.
    #[inline]
    pub fn role(&self, index: usize) -> Role {
        match self {
            Self::Snapshot(snapshot) => snapshot.roles[index],
            Self::At(set, now) => set.keys()[index].role_at(*now),
        }
    }

    /// Keys that verify, as `(index, role)`: the current key first, then the
    /// others in the set's order (pending, then fallbacks newest first),
    /// like [`KeySet::verifying_keys_at`]. From a snapshot this is the order
    /// it computed once for its generation.
    #[inline]
    pub fn verifying(self) -> Verifying<'a> {
        match self {
            Self::Snapshot(snapshot) => Verifying(VerifyingInner::Order(snapshot.order.iter())),
            Self::At(set, now) => Verifying::at(set, now),
        }
    }

    /// The index of the key that signs.
    pub fn signing(&self) -> usize {
        match self {
            Self::Snapshot(snapshot) => snapshot.signing,
            Self::At(set, now) => signing_index(set, *now),
        }
    }
}

/// The keys that verify, in the order to try them: see
/// [`RolesNow::verifying`].
#[derive(Debug, Clone)]
pub struct Verifying<'a>(VerifyingInner<'a>);

#[derive(Debug, Clone)]
enum VerifyingInner<'a> {
    /// A snapshot's order.
    Order(std::slice::Iter<'a, (usize, Role)>),
    /// Computed from each key's windows at `now`: `current` (taken once
    /// given), then every other key at or after `next` that is not retired.
    At {
        set: &'a KeySet,
        now: SystemTime,
        current: Option<usize>,
        current_given: bool,
        next: usize,
    },
}

impl<'a> Verifying<'a> {
    /// Computed from each key's windows at `now`.
    pub(crate) fn at(set: &'a KeySet, now: SystemTime) -> Self {
        let current = set
            .keys()
            .iter()
            .position(|key| key.role_at(now) == Role::Current);
        Self(VerifyingInner::At {
            set,
            now,
            current,
            current_given: false,
            next: 0,
        })
    }
}

impl Iterator for Verifying<'_> {
    type Item = (usize, Role);

    #[inline]
    fn next(&mut self) -> Option<(usize, Role)> {
        match &mut self.0 {
            VerifyingInner::Order(order) => order.next().copied(),
            VerifyingInner::At {
                set,
                now,
                current,
                current_given,
                next,
            } => {
                if !*current_given {
                    *current_given = true;
                    if let Some(index) = *current {
                        return Some((index, Role::Current));
                    }
                }
                while let Some(key) = set.keys().get(*next) {
                    let index = *next;
                    *next += 1;
                    if Some(index) == *current {
                        continue;
                    }
                    let role = key.role_at(*now);
                    if role != Role::Retired {
                        return Some((index, role));
                    }
                }
                None
            }
        }
    }
}

fn signing_index(set: &KeySet, now: SystemTime) -> usize {
    let key = set.signing_key_at(now);
    set.keys()
        .iter()
        .position(|k| std::ptr::eq(k, key))
        .expect("the signing key belongs to its set")
}

fn nanos_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A wall clock that is cheap to read and never ahead of the real time by
/// more than [`error`]: `CLOCK_REALTIME_COARSE` (the time of the last timer
/// tick, read from the vDSO without reading the TSC) where Linux has it.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod coarse {
    use rustix::time::{ClockId, clock_getres, clock_gettime};

    #[inline]
    pub(super) fn now() -> u64 {
        let t = clock_gettime(ClockId::RealtimeCoarse);
        u64::try_from(t.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
    }

    /// How far behind the real time the coarse clock may be: its resolution
    /// (one tick), doubled for safety.
    pub(super) fn error() -> u64 {
        let res = clock_getres(ClockId::RealtimeCoarse);
        let tick = u64::try_from(res.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(res.tv_nsec).unwrap_or(0));
        tick.max(1_000_000).saturating_mul(2)
    }
}

/// Elsewhere the exact wall clock.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod coarse {
    #[inline]
    pub(super) fn now() -> u64 {
        super::nanos_since_epoch(std::time::SystemTime::now())
    }

    pub(super) fn error() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{KeyEntry, KeyMaterial};

    fn material(i: u8) -> KeyMaterial {
        KeyMaterial::from(format!("role-snapshot-test-key-{i}-0123456789abcdefghij"))
    }

    #[test]
    fn a_snapshot_holds_until_the_next_transition_and_then_roles_are_exact() {
        let now = SystemTime::now();
        let epoch = UNIX_EPOCH;
        let set = KeySet::new(
            vec![
                KeyEntry::new("new", material(1), Some(epoch), None, None),
                KeyEntry::new(
                    "old",
                    material(2),
                    Some(epoch),
                    Some(epoch),
                    Some(now + Duration::from_secs(3600)),
                ),
            ],
            now,
        )
        .unwrap();
        let snapshot = RoleSnapshot::of(&set);
        let roles = snapshot.now(&set);
        assert!(matches!(roles, RolesNow::Snapshot(_)));
        assert_eq!(
            (roles.role(0), roles.role(1), roles.signing()),
            (Role::Current, Role::Fallback, 0)
        );

        // The same set whose fallback window has already closed: a snapshot
        // taken before the close would be past its deadline now.
        let mut late = snapshot.clone();
        late.holds.until = coarse::now().saturating_sub(1);
        let retired_set = KeySet::new(
            vec![
                KeyEntry::new("new", material(1), Some(epoch), None, None),
                KeyEntry::new("old", material(2), Some(epoch), Some(epoch), Some(now)),
            ],
            now,
        )
        .unwrap();
        let roles = late.now(&retired_set);
        assert!(matches!(roles, RolesNow::At(..)));
        assert_eq!(
            roles.role(1),
            Role::Retired,
            "past the deadline the role is computed exactly"
        );
    }

    #[test]
    fn the_verifying_order_is_current_then_the_others_in_order_and_never_a_retired_key() {
        let now = SystemTime::now();
        let (epoch, hour) = (UNIX_EPOCH, Duration::from_secs(3600));
        let set = KeySet::new(
            vec![
                KeyEntry::new("pending", material(1), Some(now + hour), None, None),
                KeyEntry::new("current", material(2), Some(epoch), Some(now + hour), None),
                KeyEntry::new(
                    "fallback",
                    material(3),
                    Some(epoch),
                    Some(epoch),
                    Some(now + hour),
                ),
                KeyEntry::new("retired", material(4), Some(epoch), Some(epoch), Some(epoch)),
                KeyEntry::new("older", material(5), Some(epoch), Some(epoch), None),
            ],
            now,
        )
        .unwrap();
        let ids = |order: Vec<(usize, Role)>| -> Vec<(&str, Role)> {
            order
                .into_iter()
                .map(|(i, role)| (set.keys()[i].id(), role))
                .collect()
        };
        let expected = vec![
            ("current", Role::Current),
            ("pending", Role::Pending),
            ("fallback", Role::Fallback),
            ("older", Role::Fallback),
        ];
        let snapshot = RoleSnapshot::of(&set);
        let from_snapshot = snapshot.now(&set);
        assert!(matches!(from_snapshot, RolesNow::Snapshot(_)));
        assert_eq!(ids(from_snapshot.verifying().collect()), expected);
        assert_eq!(ids(RolesNow::At(&set, now).verifying().collect()), expected);
        let from_set: Vec<_> = set
            .verifying_keys_at(now)
            .map(|(key, role)| (key.id(), role))
            .collect();
        assert_eq!(from_set, expected);
        // Past the pending key's start and the fallback's end.
        let later = now + hour + hour;
        assert_eq!(
            ids(RolesNow::At(&set, later).verifying().collect()),
            vec![
                ("pending", Role::Current),
                ("current", Role::Fallback),
                ("older", Role::Fallback),
            ]
        );
    }

    #[test]
    fn the_deadline_is_the_next_transition_less_the_coarse_clock_error() {
        let now = SystemTime::now();
        let close = now + Duration::from_secs(10);
        let set = KeySet::new(
            vec![
                KeyEntry::new("new", material(1), Some(UNIX_EPOCH), None, None),
                KeyEntry::new(
                    "old",
                    material(2),
                    Some(UNIX_EPOCH),
                    Some(UNIX_EPOCH),
                    Some(close),
                ),
            ],
            now,
        )
        .unwrap();
        let snapshot = RoleSnapshot::of(&set);
        assert_eq!(snapshot.holds.until, nanos_since_epoch(close) - coarse::error());
        assert!(snapshot.holds.from <= coarse::now());
        let single = KeySet::single("only", material(3)).unwrap();
        assert_eq!(
            RoleSnapshot::of(&single).holds.until,
            u64::MAX,
            "no transition ahead: holds for good"
        );
        let snapshot = RoleSnapshot::of(&single);
        assert!(
            matches!(snapshot.now(&single), RolesNow::Snapshot(_)),
            "no clock read needed"
        );
    }

    #[test]
    fn the_coarse_clock_is_never_ahead_of_the_wall_clock() {
        for _ in 0..1000 {
            let coarse = coarse::now();
            let exact = nanos_since_epoch(SystemTime::now());
            assert!(coarse <= exact, "{coarse} > {exact}");
        }
    }
}
