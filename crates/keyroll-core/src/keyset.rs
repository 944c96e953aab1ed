//! An evaluated key set: which key signs, which verify, until when.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::usage::{Format, UsageCounter};
use crate::{KeyMaterial, KeyStrength, Verifying, VersionId, Weakness};

/// What a key does at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Signs new tokens and verifies.
    Current,
    /// Known and verifying, but not signing yet (staged activation).
    Pending,
    /// Superseded: still verifies until its fallback window ends.
    Fallback,
    /// No longer verifies.
    Retired,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Current => "current",
            Self::Pending => "pending",
            Self::Fallback => "fallback",
            Self::Retired => "retired",
        })
    }
}

/// One key of a [`KeySet`], with the moments at which its role changes.
///
/// Roles are functions of time so that every replica switches at the same
/// instant, computed from the store's own timestamps, without waiting for its
/// next refresh.
pub struct KeyEntry {
    id: Arc<str>,
    version_id: VersionId,
    material: KeyMaterial,
    kid: [u8; 8],
    signs_from: Option<SystemTime>,
    signs_until: Option<SystemTime>,
    verifies_until: Option<SystemTime>,
    keyed_mac: Hmac<Sha256>,
    verifications: Arc<UsageCounter>,
}

impl KeyEntry {
    /// A key with explicit windows. `signs_from: None` never signs; `signs_until:
    /// None` signs until superseded; `verifies_until: None` verifies as long as
    /// it is in the set.
    pub fn new(
        id: impl Into<String>,
        material: KeyMaterial,
        signs_from: Option<SystemTime>,
        signs_until: Option<SystemTime>,
        verifies_until: Option<SystemTime>,
    ) -> Self {
        let keyed_mac = <Hmac<Sha256> as Mac>::new_from_slice(material.expose_secret())
            .expect("HMAC accepts keys of any length");
        let id: Arc<str> = Arc::from(id.into());
        Self {
            version_id: VersionId::new(&id),
            id,
            kid: material.key_id(),
            material,
            signs_from,
            signs_until,
            verifies_until,
            keyed_mac,
            verifications: Arc::default(),
        }
    }

    /// The store's version id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store's version id, shared (cloning it does not allocate).
    pub fn shared_id(&self) -> Arc<str> {
        Arc::clone(&self.id)
    }

    /// The store's version id, copied (what verifications report: copying
    /// writes nothing that other threads share).
    #[inline]
    pub fn version_id(&self) -> VersionId {
        self.version_id.clone()
    }

    /// The 8-byte key id native tokens carry.
    pub fn kid(&self) -> [u8; 8] {
        self.kid
    }

    /// The secret material, for signers and encrypters.
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// HMAC-SHA256 keyed with the material, precomputed when the set was
    /// built. Clone it to derive per-purpose keys without re-keying.
    pub fn keyed_mac(&self) -> &Hmac<Sha256> {
        &self.keyed_mac
    }

    /// When it starts signing, if it ever does.
    pub fn signs_from(&self) -> Option<SystemTime> {
        self.signs_from
    }

    /// When a newer key takes over signing, if known.
    pub fn signs_until(&self) -> Option<SystemTime> {
        self.signs_until
    }

    /// When it stops verifying, if ever.
    pub fn verifies_until(&self) -> Option<SystemTime> {
        self.verifies_until
    }

    /// Its role at `now`.
    pub fn role_at(&self, now: SystemTime) -> Role {
        if self.verifies_until.is_some_and(|until| now >= until) {
            return Role::Retired;
        }
        if self.signs_until.is_some_and(|until| now >= until) {
            return Role::Fallback;
        }
        match self.signs_from {
            Some(from) if now >= from => Role::Current,
            _ => Role::Pending,
        }
    }

    /// How many tokens this key has verified since it entered the keyring
    /// (kept across key set swaps), so operators see when an old key is no
    /// longer in use.
    ///
    /// Each thread counts on its own cache line and this sums them, so
    /// counting writes no memory another core reads on its hot path.
    pub fn verifications(&self) -> u64 {
        self.verifications.total()
    }

    /// How many tokens of `format` this key verified in `role`.
    pub fn verifications_of(&self, format: Format, role: Role) -> u64 {
        self.verifications.of(format, role)
    }

    /// Counts one successful verification of a `format` token by this key in
    /// `role` (in the calling thread's slot).
    #[inline]
    pub fn record_verification(&self, format: Format, role: Role) {
        self.verifications.record(format, role);
    }

    fn same_as(&self, other: &KeyEntry) -> bool {
        self.id == other.id
            && self.material == other.material
            && self.signs_from == other.signs_from
            && self.signs_until == other.signs_until
            && self.verifies_until == other.verifies_until
    }
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("fingerprint", &self.material.fingerprint())
            .field("signs_from", &self.signs_from)
            .field("signs_until", &self.signs_until)
            .field("verifies_until", &self.verifies_until)
            .field("verifications", &self.verifications())
            .finish_non_exhaustive()
    }
}

/// Keys in force: exactly one signs at any moment, others verify.
///
/// Built by [`Policy::evaluate`](crate::Policy::evaluate) (or
/// [`KeySet::new`]) and swapped into a [`Keyring`](crate::Keyring) whole.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<KeyEntry>,
    generation: u64,
    evaluated_at: SystemTime,
}

/// Why a [`KeySet`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// No key at all.
    #[error("the key set is empty")]
    Empty,
    /// Keys exist but none signs at the moment of evaluation.
    #[error("no key may sign at the moment of evaluation")]
    NoSigningKey,
    /// A key fails the strength check (an empty or placeholder break-glass
    /// key must never sign).
    #[error("key {id} is weak: {weakness}; generate one with `keyroll generate`")]
    WeakKey {
        /// The key's id, or `#N`, its position counted from the newest, when
        /// the id is derived from the material: never the material nor its
        /// fingerprint.
        id: String,
        /// What is wrong with it.
        weakness: Weakness,
    },
}

impl KeySet {
    /// A key set from entries, newest first. At least one entry must sign at
    /// `now`, and every key must pass the default [`KeyStrength`].
    pub fn new(keys: Vec<KeyEntry>, now: SystemTime) -> Result<Self, KeySetError> {
        Self::with_strength(keys, now, &KeyStrength::default())
    }

    /// [`KeySet::new`] with another strength rule, for keys fixed by an
    /// outside format (test vectors, a legacy service's short secret). Even
    /// [`KeyStrength::any_non_empty`] refuses an empty key.
    pub fn with_strength(
        keys: Vec<KeyEntry>,
        now: SystemTime,
        strength: &KeyStrength,
    ) -> Result<Self, KeySetError> {
        for (position, key) in keys.iter().enumerate() {
            strength
                .check(key.material())
                .map_err(|weakness| KeySetError::WeakKey {
                    id: crate::policy::weak_key_name(key.id(), key.material(), position),
                    weakness,
                })?;
        }
        Self::checked(keys, now)
    }

    /// A key set from entries whose strength the caller (the policy) has
    /// already checked.
    pub(crate) fn checked(keys: Vec<KeyEntry>, now: SystemTime) -> Result<Self, KeySetError> {
        if keys.is_empty() {
            return Err(KeySetError::Empty);
        }
        if !keys.iter().any(|k| k.role_at(now) == Role::Current) {
            return Err(KeySetError::NoSigningKey);
        }
        Ok(Self {
            keys,
            generation: 0,
            evaluated_at: now,
        })
    }

    /// A set of one key that signs from now on, for static setups and
    /// break-glass keys. The key must pass the default [`KeyStrength`].
    pub fn single(id: impl Into<String>, material: KeyMaterial) -> Result<Self, KeySetError> {
        Self::single_with_strength(id, material, &KeyStrength::default())
    }

    /// [`KeySet::single`] with another strength rule (see
    /// [`KeySet::with_strength`]).
    pub fn single_with_strength(
        id: impl Into<String>,
        material: KeyMaterial,
        strength: &KeyStrength,
    ) -> Result<Self, KeySetError> {
        let entry = KeyEntry::new(id, material, Some(SystemTime::UNIX_EPOCH), None, None);
        Self::with_strength(vec![entry], SystemTime::now(), strength)
    }

    /// Every key, newest first, whatever its role.
    pub fn keys(&self) -> &[KeyEntry] {
        &self.keys
    }

    /// The generation the keyring gave this set (0 before it was installed).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the policy built this set.
    pub fn evaluated_at(&self) -> SystemTime {
        self.evaluated_at
    }

    /// The key that signs now.
    pub fn signing_key(&self) -> &KeyEntry {
        self.signing_key_at(SystemTime::now())
    }

    /// The key that signs at `now`. Between the moment a set was evaluated and
    /// its next evaluation, activation and expiry moments still apply exactly.
    ///
    /// A key never signs past its explicit expiry: its signing window ends
    /// there ([`Policy`](crate::Policy)). Should no key's window cover `now`
    /// (the set was not re-evaluated in time), the newest fallback (a key
    /// every replica holds, that still verifies) signs, so a replica can always verify its own tokens; only
    /// when none verifies does the newest key sign, and then the refresher
    /// fails the keyring closed (its re-evaluation finds no usable key).
    pub fn signing_key_at(&self, now: SystemTime) -> &KeyEntry {
        self.keys
            .iter()
            .find(|k| k.role_at(now) == Role::Current)
            .or_else(|| self.keys.iter().find(|k| k.role_at(now) == Role::Fallback))
            .unwrap_or_else(|| {
                self.keys
                    .iter()
                    .find(|k| k.signs_from.is_some())
                    .unwrap_or(&self.keys[0])
            })
    }

    /// True while this set can serve at `now`: the key that signs at `now`
    /// still verifies (the current key, a fallback standing in until the
    /// set is re-evaluated, or the first key of a new store before it
    /// activates). False once it is retired (past its explicit expiry): then
    /// nothing may sign and nothing may verify
    /// ([`Keyring::serving_at`](crate::Keyring::serving_at)).
    pub fn serves_at(&self, now: SystemTime) -> bool {
        self.signing_key_at(now).role_at(now) != Role::Retired
    }

    /// This set without the keys that `keep` refuses, or `None` when it
    /// refuses none. The kept keys keep their windows; used to apply
    /// revocations when the rest of a new key set is refused.
    pub(crate) fn retain(
        &self,
        keep: impl Fn(&KeyEntry) -> bool,
        now: SystemTime,
    ) -> Option<Result<Self, KeySetError>> {
        if self.keys.iter().all(&keep) {
            return None;
        }
        let kept = self
            .keys
            .iter()
            .filter(|k| keep(k))
            .map(|k| {
                KeyEntry::new(
                    k.shared_id().to_string(),
                    k.material.clone(),
                    k.signs_from,
                    k.signs_until,
                    k.verifies_until,
                )
            })
            .collect();
        Some(Self::checked(kept, now))
    }

    /// Keys that verify at `now`: the current key first, then pending keys,
    /// then fallbacks newest first (the order try-all formats use).
    ///
    /// Keys are stored newest first, so after the current key the others
    /// already come in that order: staged pending keys, keys newer than the
    /// current one (pending by time), then older ones (fallbacks).
    pub fn verifying_keys_at(&self, now: SystemTime) -> impl Iterator<Item = (&KeyEntry, Role)> {
        Verifying::at(self, now).map(|(index, role)| (&self.keys[index], role))
    }

    /// The keys that only verify at `now`: every key of
    /// [`verifying_keys_at`](Self::verifying_keys_at) but the one that signs
    /// (nor another holding its material), in that order. With the signing
    /// key, what a framework that takes one key and a list of fallbacks is
    /// given (Django's `SECRET_KEY_FALLBACKS`, an Express secrets array after
    /// its first entry).
    pub fn verify_only_keys_at(&self, now: SystemTime) -> impl Iterator<Item = &KeyEntry> {
        let signing = self.signing_key_at(now);
        self.verifying_keys_at(now)
            .map(|(key, _)| key)
            .filter(move |key| key.material() != signing.material())
    }

    /// The key with the store id `id`.
    pub fn key(&self, id: &str) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| &*k.id == id)
    }

    /// The next moment after `now` at which some role changes, so a refresher
    /// can re-evaluate then.
    pub fn next_transition_after(&self, now: SystemTime) -> Option<SystemTime> {
        self.keys
            .iter()
            .flat_map(|k| [k.signs_from, k.signs_until, k.verifies_until])
            .flatten()
            .filter(|&t| t > now)
            .min()
    }

    /// True when this set holds the same keys with the same windows as
    /// `previous`, and each key's role when this set was evaluated is its role
    /// when `previous` was: a refresh that found nothing new does not swap,
    /// while an activation or expiry moment does.
    pub fn unchanged_from(&self, previous: &KeySet) -> bool {
        self.keys.len() == previous.keys.len()
            && self.keys.iter().zip(&previous.keys).all(|(a, b)| {
                a.same_as(b) && a.role_at(self.evaluated_at) == b.role_at(previous.evaluated_at)
            })
    }

    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    pub(crate) fn carry_counters_from(&mut self, previous: &KeySet) {
        for key in &mut self.keys {
            if let Some(old) = previous
                .keys
                .iter()
                .find(|old| old.id == key.id && old.kid == key.kid)
            {
                key.verifications = Arc::clone(&old.verifications);
            }
        }
    }
}
