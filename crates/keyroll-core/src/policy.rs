//! The rotation policy: the one place that decides roles.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::{KeyEntry, KeyMaterial, KeySet, KeySetError, KeyState, KeyVersion, Role, Stage};

/// Default fallback window: a month, the usual "users who visit at least
/// monthly never notice" window.
pub const DEFAULT_FALLBACK_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// Default number of superseded keys that keep verifying.
pub const DEFAULT_MAX_FALLBACKS: usize = 4;

/// Turns what a provider reports into a [`KeySet`].
///
/// Rules, in order:
/// - disabled and destroyed versions, and versions past their explicit
///   expiry, never verify;
/// - where the store has stage labels they win: the `Current` version signs,
///   `Pending` versions only verify, `Previous` and unlabelled versions are
///   fallbacks;
/// - otherwise versions are taken newest first: the newest one signs once it
///   is `activation_delay` old (counted from the store's creation time, or
///   from when this process first saw it when the store keeps no time, or
///   from an explicit activation moment), and until then it only verifies;
/// - a superseded version verifies for `fallback_window` after the moment it
///   stopped signing, and at most `max_fallbacks` of them do;
/// - the signing key and pending keys must pass [`KeyStrength`]: a weak one
///   refuses the whole result, as does an empty one (the refresher keeps the
///   last good set); a weak fallback is dropped with a warning, since it never
///   signs again and a forgeable key verifies nothing worth trusting.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Policy {
    /// How long a newly published key only verifies before it signs. `None`
    /// lets the refresher choose from the provider's
    /// [`Reach`](crate::Reach): zero for local sources, one poll interval
    /// plus jitter plus a clock-skew margin for shared stores.
    pub activation_delay: Option<Duration>,
    /// How long a superseded key keeps verifying.
    pub fallback_window: Duration,
    /// How many superseded keys keep verifying at most.
    pub max_fallbacks: usize,
    /// What a key must look like to be used.
    pub strength: KeyStrength,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            activation_delay: None,
            fallback_window: DEFAULT_FALLBACK_WINDOW,
            max_fallbacks: DEFAULT_MAX_FALLBACKS,
            strength: KeyStrength::default(),
        }
    }
}

/// Why the policy refused to build a key set. The refresher keeps the last
/// good set when this happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The store holds no enabled, unexpired version.
    #[error("no usable key: the source holds no enabled, unexpired key version")]
    NoUsableKey,
    /// Only pending versions exist: nothing may sign.
    #[error("no key may sign: the source holds only pending versions; promote one to current")]
    NoSigningKey,
    /// The store revoked (disabled, destroyed or expired) the key
    /// that signs, and offers no usable replacement: the keyring fails closed.
    #[error(
        "the signing key {id} was revoked in the store and no usable key replaces it; failing closed: publish a new key"
    )]
    SigningKeyRevoked {
        /// The revoked key's id.
        id: String,
    },
    /// A key that would be used is weak.
    #[error("key {id} is weak: {weakness}; generate one with `keyroll generate`")]
    WeakKey {
        /// The store's version id, or `#N`, the key's position counted
        /// from the newest, when its id is derived from the material: never
        /// the material nor its fingerprint.
        id: String,
        /// What is wrong with it.
        weakness: Weakness,
    },
}

impl Policy {
    /// Sets the activation delay.
    pub fn with_activation_delay(mut self, delay: Duration) -> Self {
        self.activation_delay = Some(delay);
        self
    }

    /// Sets the fallback window.
    pub fn with_fallback_window(mut self, window: Duration) -> Self {
        self.fallback_window = window;
        self
    }

    /// Sets the maximum number of fallbacks.
    pub fn with_max_fallbacks(mut self, max: usize) -> Self {
        self.max_fallbacks = max;
        self
    }

    /// Sets the strength rule.
    pub fn with_strength(mut self, strength: KeyStrength) -> Self {
        self.strength = strength;
        self
    }

    /// How many versions this policy can use at most: the signing key, one
    /// pending key and [`max_fallbacks`](Self::max_fallbacks). What
    /// [`KeyProvider::fetch_newest`](crate::KeyProvider::fetch_newest) is given.
    pub fn versions_used(&self) -> usize {
        self.max_fallbacks.saturating_add(2)
    }

    /// Builds the key set in force at `now` from `versions` (newest first).
    ///
    /// `first_seen` supplies the moment this process first saw each version,
    /// used only for versions whose store keeps no creation time.
    pub fn evaluate(
        &self,
        versions: &[KeyVersion],
        first_seen: &FirstSeen,
        now: SystemTime,
    ) -> Result<KeySet, PolicyError> {
        let delay = self.activation_delay.unwrap_or_default();
        let mut usable: Vec<&KeyVersion> = Vec::with_capacity(versions.len());
        for version in versions {
            // The same key listed twice counts once, where it first appears.
            if version.usable_at(now) && !usable.iter().any(|u| u.id == version.id) {
                usable.push(version);
            }
        }
        if usable.is_empty() {
            return Err(PolicyError::NoUsableKey);
        }

        let (pending, chain) = split_by_stage(&usable);
        if chain.is_empty() {
            return Err(PolicyError::NoSigningKey);
        }

        // Each version of the signing chain signs from its activation until a
        // newer one activates; windows never overlap.
        // When each version appeared (the store's creation time, or when this
        // process first saw it), and when it may start signing.
        let appeared: Vec<SystemTime> = chain
            .iter()
            .map(|v| v.created.or_else(|| first_seen.get(&v.id)).unwrap_or(now))
            .collect();
        let activation: Vec<SystemTime> = chain
            .iter()
            .zip(&appeared)
            .map(|(v, &appeared)| v.activates.unwrap_or_else(|| saturating_add(appeared, delay)))
            .collect();
        let mut windows: Vec<(Option<SystemTime>, Option<SystemTime>)> = Vec::with_capacity(chain.len());
        let mut newer_start: Option<SystemTime> = None;
        for &from in &activation {
            windows.push((Some(from), newer_start));
            newer_start = Some(newer_start.map_or(from, |t| t.min(from)));
        }
        // Nothing activated yet (a brand-new store): the earliest to activate
        // signs at once, as no other key could; on a tie the older one, which
        // more replicas hold. Its start is the moment it appeared, so every
        // evaluation (and every replica) computes the same window.
        let signs_now = |(from, until): &(Option<SystemTime>, Option<SystemTime>)| {
            from.is_some_and(|f| f <= now) && until.is_none_or(|u| now < u)
        };
        if !windows.iter().any(signs_now) {
            let bootstrap = (0..chain.len())
                .filter(|&i| windows[i].1.is_none_or(|u| now < u))
                .min_by_key(|&i| (activation[i], std::cmp::Reverse(i)))
                .expect("the newest version of the chain is never superseded");
            tracing::warn!(
                key = %chain[bootstrap].id,
                "no key has reached its activation moment; signing with the earliest to activate"
            );
            windows[bootstrap].0 = Some(appeared[bootstrap].min(now));
        }

        let mut entries = Vec::with_capacity(usable.len());
        for version in pending {
            entries.push(KeyEntry::new(
                version.id.clone(),
                version.material.clone(),
                None,
                None,
                version.expires,
            ));
        }
        let mut fallbacks = 0;
        for (version, (from, until)) in chain.iter().zip(windows) {
            // A key never signs past its explicit expiry, as it no longer
            // verifies then; at that moment a re-evaluation lets the next
            // usable key sign.
            let until = earliest(until, version.expires);
            let verifies_until = earliest(
                until.map(|u| saturating_add(u, self.fallback_window)),
                version.expires,
            );
            let entry = KeyEntry::new(
                version.id.clone(),
                version.material.clone(),
                from,
                until,
                verifies_until,
            );
            match entry.role_at(now) {
                Role::Retired => continue,
                Role::Fallback if fallbacks >= self.max_fallbacks => continue,
                Role::Fallback => fallbacks += 1,
                _ => {}
            }
            entries.push(entry);
        }

        // A weak key that signs, or will, refuses the set. A weak fallback
        // never signs again and a forgeable key proves nothing: it is dropped
        // (with a warning) instead of blocking every later key set, which
        // matters for stores that cannot delete a version (AWS).
        let mut strong = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.strength.check(entry.material()) {
                Ok(()) => strong.push(entry),
                Err(weakness) => {
                    let position = versions.iter().position(|v| v.id == entry.id()).unwrap_or(0);
                    let id = weak_key_name(entry.id(), entry.material(), position);
                    if entry.role_at(now) != Role::Fallback {
                        return Err(PolicyError::WeakKey { id, weakness });
                    }
                    tracing::warn!(key = %id, %weakness, "dropping a weak fallback key");
                }
            }
        }
        KeySet::checked(strong, now).map_err(|e| match e {
            KeySetError::Empty => PolicyError::NoUsableKey,
            _ => PolicyError::NoSigningKey,
        })
    }
}

impl Policy {
    /// Applies the store's revocations to `previous` when a new key set is
    /// refused: keys the store now lists as disabled, destroyed or past their
    /// explicit expiry are dropped. Keys the store no longer lists stay (a
    /// single-value source such as a file replaces its key; a capped listing
    /// leaves old versions out), as they would in any refused set. `None`
    /// when nothing was revoked; an error when nothing would be left to sign
    /// with, and the caller must fail closed.
    pub fn revoke(
        &self,
        previous: &KeySet,
        versions: &[KeyVersion],
        now: SystemTime,
    ) -> Option<Result<KeySet, PolicyError>> {
        let revoked = |key: &KeyEntry| versions.iter().any(|v| v.id == key.id() && !v.usable_at(now));
        previous.retain(|key| !revoked(key), now).map(|set| {
            set.map_err(|_| PolicyError::SigningKeyRevoked {
                id: (previous.keys().iter())
                    .find(|key| key.signs_from().is_some() && revoked(key))
                    .unwrap_or_else(|| previous.signing_key_at(now))
                    .id()
                    .to_owned(),
            })
        })
    }

    /// The versions the store should disable after a rotation (what `keyroll
    /// rotate --disable-old` disables): enabled versions that no longer sign
    /// or verify in the key set this policy builds from `versions` at `now`.
    /// Empty when the policy refuses the versions (nothing is retired on a
    /// refused set).
    pub fn retired(
        &self,
        versions: &[KeyVersion],
        first_seen: &FirstSeen,
        now: SystemTime,
    ) -> Result<Vec<String>, PolicyError> {
        let set = self.evaluate(versions, first_seen, now)?;
        Ok(versions
            .iter()
            .filter(|v| v.state == KeyState::Enabled)
            .filter(|v| set.key(&v.id).is_none_or(|k| k.role_at(now) == Role::Retired))
            .map(|v| v.id.clone())
            .collect())
    }
}

/// How errors and logs name a key that failed the strength check: its
/// store's version id, or, when that id is derived from the material (the
/// [fingerprint](KeyMaterial::fingerprint) that stores without ids use),
/// `#N` with its 0-based `position` counted from 1, newest first. A weak
/// key's fingerprint would give the key away: it is an unsalted hash of a
/// short or guessable text.
pub(crate) fn weak_key_name(id: &str, material: &KeyMaterial, position: usize) -> String {
    if id == material.fingerprint() {
        format!("#{} (counting from the newest)", position.saturating_add(1))
    } else {
        id.to_owned()
    }
}

fn earliest(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `at + by`, or the latest representable moment when that overflows: store
/// times (a creation date of 1e300 seconds) and settings
/// (`with_fallback_window(Duration::MAX)`) are outside data and must not panic.
pub(crate) fn saturating_add(at: SystemTime, by: Duration) -> SystemTime {
    if let Some(later) = at.checked_add(by) {
        return later;
    }
    let (mut at, mut step) = (at, by);
    while !step.is_zero() {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

/// Splits usable versions into verify-only pending versions and the signing
/// chain, newest first. Stage labels win where the store has them.
fn split_by_stage<'a>(usable: &[&'a KeyVersion]) -> (Vec<&'a KeyVersion>, Vec<&'a KeyVersion>) {
    if usable.iter().all(|v| v.stage.is_none()) {
        return (Vec::new(), usable.to_vec());
    }
    let with = |stage: Stage| usable.iter().copied().filter(move |v| v.stage == Some(stage));
    let pending = with(Stage::Pending).collect();
    let chain = with(Stage::Current)
        .chain(with(Stage::Previous))
        .chain(usable.iter().copied().filter(|v| v.stage.is_none()))
        .collect();
    (pending, chain)
}

/// When this process first saw each version id. Used in place of a creation
/// time for stores that keep none (environment variables, plain key files).
#[derive(Debug, Clone, Default)]
pub struct FirstSeen(HashMap<String, SystemTime>);

impl FirstSeen {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `now` for versions not seen before and forgets versions that
    /// are gone.
    pub fn observe(&mut self, versions: &[KeyVersion], now: SystemTime) {
        self.0.retain(|id, _| versions.iter().any(|v| &v.id == id));
        for version in versions {
            self.0.entry(version.id.clone()).or_insert(now);
        }
    }

    /// When `id` was first seen.
    pub fn get(&self, id: &str) -> Option<SystemTime> {
        self.0.get(id).copied()
    }
}

/// Minimum requirements for key material. The default follows Django's own
/// check, with a byte length suited to HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStrength {
    /// Minimum length in bytes (default 32).
    pub min_bytes: usize,
    /// Minimum number of distinct bytes (default 5).
    pub min_distinct: usize,
    /// Prefixes that mark a key as a placeholder (default `django-insecure-`).
    pub forbidden_prefixes: Vec<String>,
}

impl Default for KeyStrength {
    fn default() -> Self {
        Self {
            min_bytes: 32,
            min_distinct: 5,
            forbidden_prefixes: vec!["django-insecure-".to_owned()],
        }
    }
}

/// What makes a key weak. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Weakness {
    /// Too short.
    TooShort {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// Too few distinct bytes.
    TooFewDistinct {
        /// How many distinct bytes it has.
        distinct: usize,
        /// The minimum.
        min: usize,
    },
    /// Starts with a placeholder prefix.
    ForbiddenPrefix(String),
}

impl fmt::Display for Weakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len, min } => write!(f, "{len} bytes long, at least {min} required"),
            Self::TooFewDistinct { distinct, min } => {
                write!(f, "only {distinct} distinct characters, at least {min} required")
            }
            Self::ForbiddenPrefix(prefix) => write!(f, "starts with the placeholder prefix `{prefix}`"),
        }
    }
}

impl KeyStrength {
    /// Accepts any non-empty key. For tests and for formats whose keys are
    /// validated elsewhere; never for production secrets.
    pub fn any_non_empty() -> Self {
        Self {
            min_bytes: 1,
            min_distinct: 1,
            forbidden_prefixes: Vec::new(),
        }
    }

    /// Checks one key.
    pub fn check(&self, material: &KeyMaterial) -> Result<(), Weakness> {
        let bytes = material.expose_secret();
        if bytes.len() < self.min_bytes.max(1) {
            return Err(Weakness::TooShort {
                len: bytes.len(),
                min: self.min_bytes.max(1),
            });
        }
        let mut seen = [false; 256];
        let mut distinct = 0;
        for &b in bytes {
            if !seen[usize::from(b)] {
                seen[usize::from(b)] = true;
                distinct += 1;
            }
        }
        if distinct < self.min_distinct {
            return Err(Weakness::TooFewDistinct {
                distinct,
                min: self.min_distinct,
            });
        }
        if let Some(prefix) = self
            .forbidden_prefixes
            .iter()
            .find(|p| bytes.starts_with(p.as_bytes()))
        {
            return Err(Weakness::ForbiddenPrefix(prefix.clone()));
        }
        Ok(())
    }
}
