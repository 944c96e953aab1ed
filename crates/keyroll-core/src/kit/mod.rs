//! The kit every token format is built on: one verify routine, one keyed
//! HMAC, one vocabulary of rejections, one clock-skew bound.
//!
//! A format keeps what is its own (its wire layout, its settings, its
//! error type) and takes the rest from here:
//!
//! - [`KeysNow`]: the keys a verify may use, read once per call. Its
//!   [`open`](KeysNow::open) refuses while the keyring has failed closed, then
//!   reads the derived state for the keyring's generation ([`DerivedCache`]);
//!   [`first_verifying`](KeysNow::first_verifying) tries the keys in the
//!   verifying order (current, pending, fallbacks newest first) with a closure
//!   that tries one key, and [`first_named`](KeysNow::first_named) tries the
//!   keys a token names (a key id). The key that matched is counted
//!   ([`KeyEntry::record_verification`]) and named ([`VerifiedBy`]).
//! - [`KeyedHmac`]: HMAC-SHA1/256/384/512 keyed once per key, compared in
//!   constant time.
//! - [`Rejection`]: what kind of refusal a format's error is, with one
//!   wording per kind.
//! - [`MAX_CLOCK_SKEW`]: how far in the future a timestamp may lie.
//!
//! ```
//! use keyroll_core::kit::{KeyedHmac, HmacAlgorithm, KeysNow, Unverified};
//! use keyroll_core::{DerivedCache, Format, KeyMaterial, KeySet, Keyring};
//!
//! let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
//! let macs = DerivedCache::new(&keyring, |set: &KeySet| {
//!     set.keys().iter().map(|key| KeyedHmac::new(HmacAlgorithm::Sha256, key.material().expose_secret())).collect::<Vec<_>>()
//! });
//! let signature = {
//!     let mut out = [0u8; 64];
//!     let len = macs.get(&keyring).state[0].mac_into(b"hello", &mut out);
//!     out[..len].to_vec()
//! };
//! let keys = KeysNow::open(&keyring, &macs, None).expect("the keyring serves");
//! let verified = keys.first_verifying(Format::Other, |macs, position| {
//!     Ok::<_, ()>(macs[position].verify(b"hello", &signature).then_some(()))
//! });
//! assert_eq!(&*verified.unwrap().1.id, "v1");
//! let refused = keys.first_verifying(Format::Other, |macs, position| {
//!     Ok::<_, ()>(macs[position].verify(b"changed", &signature).then_some(()))
//! });
//! assert_eq!(refused.unwrap_err(), Unverified::NoMatch);
//! ```

mod hmac;
mod rejection;

use std::fmt;
use std::time::{Duration, SystemTime};

pub use self::hmac::{HmacAlgorithm, KeyedHmac};
pub use self::rejection::{Rejection, Unserved};
use crate::{
    Closed, DerivedCache, DerivedRef, Format, KeyEntry, KeySet, Keyring, Role, RolesNow, VerifiedBy,
};

/// How far in the future a token's timestamp may lie (clock skew between
/// replicas) before a format that checks it refuses the token: pyca's
/// `_MAX_CLOCK_SKEW` for Fernet, and the native format's bound.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The keys one verify may use: the keyring's derived state for its
/// generation and the roles in force, read once per call.
///
/// A format opens it first (refused while the keyring has failed closed),
/// parses its token, and hands a closure that tries one key to
/// [`first_verifying`](Self::first_verifying) or
/// [`first_named`](Self::first_named).
pub struct KeysNow<'c, T> {
    derived: DerivedRef<'c, T>,
    /// A clock set for tests; `None` reads roles from the generation's
    /// snapshot while it holds.
    clock: Option<fn() -> SystemTime>,
}

/// Why no key verified a token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unverified<E> {
    /// The token names no key this keyring accepts (unknown, or retired).
    UnknownKey,
    /// No key tried matched.
    NoMatch,
    /// A key matched but the closure refused the token (for example: too old).
    Refused(E),
}

impl<'c, T: Send + Sync + 'static> KeysNow<'c, T> {
    /// The keys of `keyring` now, with `cache`'s state for its generation.
    ///
    /// # Errors
    /// [`Closed::FailedClosed`] while the keyring has failed closed
    /// ([`Keyring::is_closed`]): nothing verifies then.
    #[inline]
    pub fn open(
        keyring: &Keyring,
        cache: &'c DerivedCache<T>,
        clock: Option<fn() -> SystemTime>,
    ) -> Result<Self, Closed> {
        if keyring.is_closed() {
            return Err(Closed::FailedClosed);
        }
        Ok(Self {
            derived: cache.get(keyring),
            clock,
        })
    }
}

impl<T> KeysNow<'_, T> {
    /// The state derived from the key set, for its generation.
    #[inline]
    pub fn state(&self) -> &T {
        &self.derived.state
    }

    /// The key set the state was derived from.
    #[inline]
    pub fn keys(&self) -> &KeySet {
        &self.derived.keys
    }

    /// The roles for this call: the generation's snapshot (computed exactly
    /// past its deadline, so a retired key never verifies), or at the test
    /// clock's time.
    #[inline]
    pub fn roles(&self) -> RolesNow<'_> {
        match self.clock {
            None => self.derived.roles.now(&self.derived.keys),
            Some(clock) => RolesNow::At(&self.derived.keys, clock()),
        }
    }

    /// Tries the keys that verify now, in order (the current key, pending
    /// keys, then fallbacks newest first), with `try_key(state, position)`:
    /// `Ok(Some(v))` when the key at `position` of the set verifies,
    /// `Ok(None)` to try the next, `Err` to refuse the token at once. The
    /// key that verified is counted for `format` and named.
    ///
    /// # Errors
    /// [`Unverified::NoMatch`] when no key verified, [`Unverified::Refused`]
    /// with the closure's error.
    #[inline]
    pub fn first_verifying<V, E>(
        &self,
        format: Format,
        mut try_key: impl FnMut(&T, usize) -> Result<Option<V>, E>,
    ) -> Result<(V, VerifiedBy), Unverified<E>> {
        for (position, role) in self.roles().verifying() {
            if let Some(value) = try_key(&self.derived.state, position).map_err(Unverified::Refused)? {
                return Ok((value, self.verified_by(format, position, role)));
            }
        }
        Err(Unverified::NoMatch)
    }

    /// Tries the keys at `positions` (the keys a token names, by key id),
    /// skipping retired ones, with `try_key` as in
    /// [`first_verifying`](Self::first_verifying).
    ///
    /// # Errors
    /// [`Unverified::UnknownKey`] when no position names a key that
    /// verifies now; otherwise as [`first_verifying`](Self::first_verifying).
    #[inline]
    pub fn first_named<V, E>(
        &self,
        format: Format,
        positions: impl IntoIterator<Item = usize>,
        mut try_key: impl FnMut(&T, usize) -> Result<Option<V>, E>,
    ) -> Result<(V, VerifiedBy), Unverified<E>> {
        let roles = self.roles();
        let mut known = false;
        for position in positions {
            let role = roles.role(position);
            if role == Role::Retired {
                continue;
            }
            known = true;
            if let Some(value) = try_key(&self.derived.state, position).map_err(Unverified::Refused)? {
                return Ok((value, self.verified_by(format, position, role)));
            }
        }
        Err(if known {
            Unverified::NoMatch
        } else {
            Unverified::UnknownKey
        })
    }

    /// Counts the verification on the key at `position` and names it.
    #[inline]
    fn verified_by(&self, format: Format, position: usize, role: Role) -> VerifiedBy {
        let entry: &KeyEntry = &self.derived.keys.keys()[position];
        entry.record_verification(format, role);
        VerifiedBy {
            id: entry.version_id(),
            role,
        }
    }
}

impl<T> fmt::Debug for KeysNow<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeysNow")
            .field("generation", &self.derived.keys.generation())
            .field("test_clock", &self.clock.is_some())
            .finish_non_exhaustive()
    }
}
