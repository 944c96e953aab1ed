//! MultiFernet over a live keyring.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use keyroll_core::kit::MAX_CLOCK_SKEW;
use keyroll_core::kit::{KeysNow, Rejection, Unverified};
use keyroll_core::{DerivedCache, Format, KeySet, Keyring, Verified, VerifiedBy};

use crate::key::{Derive, FernetKey, KeyError, OpenFailure};
use crate::token::RawToken;

/// Why a token did not decrypt.
///
/// Every variant but [`Key`](DecryptError::Key) and [`Stale`](DecryptError::Stale) means the token is invalid
/// or expired (what Python reports as `InvalidToken`);
/// [`is_invalid_token`](DecryptError::is_invalid_token) tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// Not a Fernet token: not url-safe base64, wrong version byte, too
    /// short, or a ciphertext that is not whole AES blocks.
    #[error("malformed Fernet token: {0}")]
    Malformed(&'static str),
    /// Older than the TTL allows.
    #[error("token expired: {age:?} old, at most {ttl:?} allowed")]
    Expired {
        /// The token's age, in whole seconds.
        age: Duration,
        /// The TTL asked for.
        ttl: Duration,
    },
    /// With a TTL, the timestamp lies more than [`MAX_CLOCK_SKEW`] in the future.
    #[error("token timestamp lies {ahead:?} in the future, more than the 60 s clock skew allowed")]
    FromTheFuture {
        /// How far ahead of the clock.
        ahead: Duration,
    },
    /// No accepted key's MAC matches: tampered, or encrypted with a key this
    /// keyring does not hold (or no longer accepts).
    #[error(
        "no accepted key decrypts this token: it was tampered with, or encrypted with a key that is not (or no longer) in the key set"
    )]
    NoMatchingKey,
    /// A key's MAC matched but the plaintext is not PKCS#7 padded: the token
    /// was produced by a broken encrypter.
    #[error(
        "the token's MAC is valid but its plaintext padding is not: it was produced by a broken encrypter"
    )]
    BadPadding,
    /// The keyring holds a key that is not usable under the configured
    /// derivation: fix the configuration, not the token.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The keyring has failed closed: the store has not confirmed the keys
    /// within the configured limit, so nothing decrypts.
    #[error("{}", Rejection::Stale)]
    Stale,
}

impl DecryptError {
    /// True when the token itself is at fault (invalid, tampered, expired);
    /// false for configuration errors ([`DecryptError::Key`]). The CLI exits
    /// 1 for the former and 2 for the latter.
    pub fn is_invalid_token(&self) -> bool {
        !matches!(self, Self::Key(_) | Self::Stale)
    }

    /// A short name for the kind of rejection (`malformed`, `expired`,
    /// `from_the_future`, `no_matching_key`, `bad_padding`, `key`, `stale`),
    /// as metrics label it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Expired { .. } => "expired",
            Self::FromTheFuture { .. } => "from_the_future",
            Self::NoMatchingKey => "no_matching_key",
            Self::BadPadding => "bad_padding",
            Self::Key(_) => "key",
            Self::Stale => "stale",
        }
    }

    /// The kind of refusal, in the words every format shares; `None` for
    /// [`Key`](DecryptError::Key): the configuration is at fault, not the token.
    pub fn rejection(&self) -> Option<Rejection> {
        Some(match self {
            Self::Malformed(_) => Rejection::Malformed,
            Self::Expired { .. } => Rejection::Expired,
            Self::FromTheFuture { .. } => Rejection::FromTheFuture,
            Self::NoMatchingKey => Rejection::BadSignature,
            Self::BadPadding => Rejection::Payload,
            Self::Stale => Rejection::Stale,
            Self::Key(_) => return None,
        })
    }

    /// Counts this refusal (`keyroll_rejections_total`, format `fernet`).
    fn count(&self) {
        keyroll_core::record_rejection(Format::Fernet, self.reason());
    }
}

/// A decrypted token, with the key that decrypted it: the plaintext is
/// `value`, the token's time `timestamp` (always set).
#[deprecated(note = "decrypt returns keyroll_core::Verified<Vec<u8>>: the plaintext is `value`")]
pub type Decrypted = Verified<Vec<u8>>;

/// Per key of the set, in the set's order: the ready Fernet key, or why the
/// key is unusable.
pub(crate) type DerivedKeys = Vec<Result<FernetKey, KeyError>>;

/// Encrypts and decrypts Fernet tokens with the keys of a [`Keyring`], with
/// Python `MultiFernet` semantics: encrypt with the signing key, decrypt with
/// any verifying key (current, then pending, then fallbacks), rotate with
/// the original timestamp.
///
/// Each key is parsed or derived once per key-set generation (a
/// [`DerivedCache`]), never per call.
///
/// ```
/// use keyroll_core::{KeySet, Keyring};
/// use keyroll_fernet::{Derive, Encrypter};
///
/// let keyring = Keyring::new(KeySet::single("v1", keyroll_fernet::generate_key()).unwrap());
/// let encrypter = Encrypter::new(keyring, Derive::Raw).unwrap();
/// let token = encrypter.encrypt("api-secret-of-a-customer").unwrap();
/// let decrypted = encrypter.decrypt(&token, None).unwrap();
/// assert_eq!(decrypted.value, b"api-secret-of-a-customer");
/// assert_eq!(&*decrypted.key.id, "v1");
/// ```
pub struct Encrypter {
    keyring: Keyring,
    derive: Derive,
    /// `None`: the system clock, and roles from the key set generation's snapshot.
    clock: Option<fn() -> SystemTime>,
    keys: DerivedCache<DerivedKeys>,
}

/// What one key-set lookup decrypted.
pub(crate) struct Opened {
    pub(crate) plaintext: Vec<u8>,
    pub(crate) key: VerifiedBy,
    pub(crate) timestamp: u64,
}

impl Encrypter {
    /// An encrypter over `keyring`, turning each key into a Fernet key with
    /// `derive`. Fails when a key of the current set is not usable (with
    /// [`Derive::Raw`]: not a Fernet key), naming the key.
    pub fn new(keyring: Keyring, derive: Derive) -> Result<Self, KeyError> {
        let keys = DerivedCache::new(&keyring, move |set: &KeySet| derive_keys(set, derive));
        let encrypter = Self {
            keyring,
            derive,
            clock: None,
            keys,
        };
        encrypter.check()?;
        Ok(encrypter)
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The key derivation in use.
    pub fn derive(&self) -> Derive {
        self.derive
    }

    /// The keyring it reads.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Checks that every key of the keyring's current set is usable.
    pub fn check(&self) -> Result<(), KeyError> {
        let derived = self.keys.get(&self.keyring);
        derived
            .state
            .iter()
            .try_for_each(|key| key.as_ref().map(|_| ()).map_err(Clone::clone))
    }

    /// Encrypts `plaintext` with the key that signs now, stamped with now;
    /// [`KeyError::Closed`] once the keyring has failed closed.
    pub fn encrypt(&self, plaintext: impl AsRef<[u8]>) -> Result<String, KeyError> {
        let now = self.now();
        let derived = self.keys.get(&self.keyring);
        let key = signing_key(&self.keyring, &derived.keys, &derived.state, now)?;
        Ok(key.encrypt_at(plaintext.as_ref(), now))
    }

    /// Decrypts `token` (surrounding whitespace ignored) with the first
    /// verifying key whose MAC matches, and reports which key that was.
    ///
    /// With a `ttl` (whole seconds count), a token older than `ttl` is
    /// [`Expired`](DecryptError::Expired) and one stamped more than
    /// [`MAX_CLOCK_SKEW`] ahead is [`FromTheFuture`](DecryptError::FromTheFuture);
    /// both are checked before the MAC, as the spec and pyca do. Without a
    /// TTL the timestamp is not checked at all.
    pub fn decrypt(&self, token: &str, ttl: Option<Duration>) -> Result<Verified<Vec<u8>>, DecryptError> {
        self.decrypt_uncounted(token, ttl)
            .inspect_err(DecryptError::count)
    }

    /// [`decrypt`](Self::decrypt) without counting a refusal.
    fn decrypt_uncounted(
        &self,
        token: &str,
        ttl: Option<Duration>,
    ) -> Result<Verified<Vec<u8>>, DecryptError> {
        let keys = KeysNow::open(&self.keyring, &self.keys, self.clock).map_err(|_| DecryptError::Stale)?;
        let raw = RawToken::parse(token)?;
        if let Some(ttl) = ttl {
            check_time(raw.timestamp(), ttl, self.now())?;
        }
        let opened = open(&keys, raw)?;
        Ok(Verified {
            value: opened.plaintext,
            key: opened.key,
            timestamp: Some(to_system_time(opened.timestamp)?),
        })
    }

    /// Re-encrypts `token` with the key that signs now, under a fresh IV,
    /// keeping its original timestamp (so its age keeps counting from when it
    /// was first made). Like `MultiFernet.rotate`, it decrypts without a TTL
    /// and always produces a new token.
    pub fn rotate(&self, token: &str) -> Result<String, DecryptError> {
        let now = self.now();
        let keys = self.keys_for_rotation()?;
        let opened = RawToken::parse(token)
            .and_then(|raw| open(&keys, raw))
            .inspect_err(DecryptError::count)?;
        Ok(self.seal(&opened.plaintext, opened.timestamp, now)?)
    }

    /// The keys to re-encrypt with: none once the keyring has failed closed
    /// ([`KeyError::Closed`], as the encrypt that would follow says).
    pub(crate) fn keys_for_rotation(&self) -> Result<KeysNow<'_, DerivedKeys>, KeyError> {
        Ok(KeysNow::open(&self.keyring, &self.keys, self.clock)?)
    }

    /// Encrypts with the key that signs at `now`, stamped `timestamp`.
    pub(crate) fn seal(&self, plaintext: &[u8], timestamp: u64, now: SystemTime) -> Result<String, KeyError> {
        let derived = self.keys.get(&self.keyring);
        let key = signing_key(&self.keyring, &derived.keys, &derived.state, now)?;
        Ok(key.encrypt_stamped(plaintext, timestamp))
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.map_or_else(SystemTime::now, |clock| clock())
    }
}

impl fmt::Debug for Encrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypter")
            .field("derive", &self.derive)
            .field("generation", &self.keyring.generation())
            .finish_non_exhaustive()
    }
}

fn derive_keys(set: &KeySet, derive: Derive) -> DerivedKeys {
    set.keys()
        .iter()
        .map(|entry| FernetKey::from_material(entry.id(), entry.material(), derive))
        .collect()
}

/// The Fernet key that signs at `now`, or why none may ([`Keyring::signing_position`]).
fn signing_key<'a>(
    keyring: &Keyring,
    set: &KeySet,
    keys: &'a DerivedKeys,
    now: SystemTime,
) -> Result<&'a FernetKey, KeyError> {
    keys[keyring.signing_position(set, now)?]
        .as_ref()
        .map_err(Clone::clone)
}

/// pyca's order and arithmetic: `timestamp + ttl < now` is expired,
/// `now + 60 < timestamp` is too far ahead; both in whole seconds.
fn check_time(timestamp: u64, ttl: Duration, now: SystemTime) -> Result<(), DecryptError> {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let ttl_secs = ttl.as_secs();
    if timestamp.saturating_add(ttl_secs) < now {
        return Err(DecryptError::Expired {
            age: Duration::from_secs(now - timestamp),
            ttl: Duration::from_secs(ttl_secs),
        });
    }
    if now.saturating_add(MAX_CLOCK_SKEW.as_secs()) < timestamp {
        return Err(DecryptError::FromTheFuture {
            ahead: Duration::from_secs(timestamp - now),
        });
    }
    Ok(())
}

fn to_system_time(timestamp: u64) -> Result<SystemTime, DecryptError> {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(timestamp))
        .ok_or(DecryptError::Malformed("timestamp out of range"))
}

/// Tries the verifying keys in order (current, pending, fallbacks). The
/// token's buffer becomes the plaintext (one allocation per decrypt). When
/// no key opens it: the first unusable key's error if any, else
/// [`BadPadding`](DecryptError::BadPadding) if a MAC matched, else
/// [`NoMatchingKey`](DecryptError::NoMatchingKey).
pub(crate) fn open(keys: &KeysNow<'_, DerivedKeys>, mut raw: RawToken) -> Result<Opened, DecryptError> {
    let mut failure = DecryptError::NoMatchingKey;
    let found = keys.first_verifying(Format::Fernet, |derived, position| {
        let key = match &derived[position] {
            Ok(key) => key,
            Err(error) => {
                failure = DecryptError::Key(error.clone());
                return Ok(None);
            }
        };
        if !key.mac_matches(&raw) {
            return Ok(None);
        }
        match key.decrypt_in_place(&mut raw) {
            Ok(len) => Ok(Some(len)),
            Err(OpenFailure::Padding) => {
                if failure == DecryptError::NoMatchingKey {
                    failure = DecryptError::BadPadding;
                }
                Ok(None)
            }
        }
    });
    match found {
        Ok((len, key)) => {
            let timestamp = raw.timestamp();
            Ok(Opened {
                plaintext: raw.into_plaintext(len),
                key,
                timestamp,
            })
        }
        Err(Unverified::Refused(error)) => Err(error),
        Err(_) => Err(failure),
    }
}
