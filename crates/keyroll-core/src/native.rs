//! The native token format: names its key, so a verify costs one HMAC.
//!
//! ```text
//! kr1.<kid>.<payload>.<mac>           untimed
//! kr1t.<kid>.<seconds>.<payload>.<mac>  timestamped
//! ```
//! `kid` is the 8-byte key id of the signing key, `payload` the value, both
//! base64url without padding; `seconds` is the signing time in decimal Unix
//! seconds; `mac` is base64url of HMAC-SHA256 over every byte before the last
//! `.`, keyed with `HMAC-SHA256(key, "keyroll/v1/native\0" || salt)`.
//! The byte-level specification with test vectors is `docs/FORMAT.md`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::kit::{KeysNow, Rejection, Unverified};
use crate::{
    Closed, Derived, DerivedCache, Format, KeySet, Keyring, MacText, Role, RolesNow, VersionId,
    record_rejection,
};

const UNTIMED: &str = "kr1";
const TIMED: &str = "kr1t";
const KID_LEN: usize = 11;
const MAC_LEN: usize = 43;

pub use crate::kit::MAX_CLOCK_SKEW;

/// Why [`Signer::sign_value`] signed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Nothing signs: the keyring has failed closed or its key expired.
    #[error(transparent)]
    Closed(#[from] Closed),
    /// The value cannot be written as JSON.
    #[error("the value is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why a token did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a token of this format.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Signed with a key this keyring does not accept (unknown, or retired).
    #[error("signed with a key that is not (or no longer) accepted")]
    UnknownKey,
    /// The signature does not match: tampered, or a different salt.
    #[error("bad signature")]
    BadSignature,
    /// Older than the allowed maximum age.
    #[error("signature expired: {age:?} old, at most {max_age:?} allowed")]
    Expired {
        /// The token's age.
        age: Duration,
        /// The allowed maximum.
        max_age: Duration,
    },
    /// A maximum age was asked for but the token carries no timestamp.
    #[error("token has no timestamp but a maximum age is required")]
    MissingTimestamp,
    /// The timestamp lies further in the future than clock skew explains.
    #[error("token timestamp lies in the future")]
    FromTheFuture,
    /// The payload is not what was asked for (not UTF-8, not the expected JSON).
    #[error("payload is not valid {0}")]
    Payload(&'static str),
    /// The keyring has failed closed: the store has not confirmed the keys
    /// for longer than the configured limit, so nothing verifies.
    #[error("{}", Rejection::Stale)]
    Stale,
}

impl VerifyError {
    /// A short name for the kind of rejection (`malformed`, `unknown_key`,
    /// `bad_signature`, `expired`, `missing_timestamp`, `from_the_future`,
    /// `payload`, `stale`), as metrics label it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::MissingTimestamp => "missing_timestamp",
            Self::FromTheFuture => "from_the_future",
            Self::Payload(_) => "payload",
            Self::Stale => "stale",
        }
    }

    /// The kind of refusal, in the words every format shares.
    pub fn rejection(&self) -> Rejection {
        match self {
            Self::Malformed(_) => Rejection::Malformed,
            Self::UnknownKey => Rejection::UnknownKey,
            Self::BadSignature => Rejection::BadSignature,
            Self::Expired { .. } => Rejection::Expired,
            Self::MissingTimestamp | Self::Payload(_) => Rejection::Payload,
            Self::FromTheFuture => Rejection::FromTheFuture,
            Self::Stale => Rejection::Stale,
        }
    }
}

/// Which key verified a token, so callers can re-sign on read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBy {
    /// The store's version id of the key.
    pub id: VersionId,
    /// Its role at the moment of verification.
    pub role: Role,
}

/// A verified value, with the key that verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    /// The value that was signed.
    pub value: T,
    /// The key that verified it.
    pub key: VerifiedBy,
    /// When it was signed, for timestamped tokens.
    pub timestamp: Option<SystemTime>,
}

impl<T> Verified<T> {
    /// True when a key other than the current one verified: sign the value
    /// again with the current key and hand out the new token.
    pub fn needs_resign(&self) -> bool {
        self.key.role != Role::Current
    }

    /// [`needs_resign`](Self::needs_resign) under the name `keyroll-fernet`'s
    /// `Decrypted` gave it.
    #[deprecated(note = "use needs_resign: Fernet's decrypt returns Verified like every format")]
    pub fn needs_rotation(&self) -> bool {
        self.needs_resign()
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Verified<U> {
        Verified {
            value: f(self.value),
            key: self.key,
            timestamp: self.timestamp,
        }
    }
}

/// Signs and verifies native tokens with the keys of a [`Keyring`].
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring, Signer};
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let signer = Signer::new(keyring).with_salt("sessions");
/// let token = signer.sign("user=42").unwrap(); // Err(Closed) once nothing may sign
/// let verified = signer.verify(&token).unwrap();
/// assert_eq!(verified.value, "user=42");
/// assert!(!verified.needs_resign());
/// ```
pub struct Signer {
    keyring: Keyring,
    salt: String,
    timestamped: bool,
    max_age: Option<Duration>,
    /// A clock set for tests; `None` reads the system clock, and roles come
    /// from the key set generation's snapshot while it holds.
    clock: Option<fn() -> SystemTime>,
    keys: DerivedCache<NativeKeys>,
}

impl Signer {
    /// A signer with an empty salt, no timestamps, reading `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self::build(keyring, String::new())
    }

    fn build(keyring: Keyring, salt: String) -> Self {
        let derive_salt = salt.clone();
        let keys = DerivedCache::new(&keyring, move |set: &KeySet| {
            NativeKeys::derive(set, &derive_salt)
        });
        Self {
            keyring,
            salt,
            timestamped: false,
            max_age: None,
            clock: None,
            keys,
        }
    }

    /// Uses `salt` as namespace: a token signed for one salt never verifies
    /// for another (sessions vs password-reset links).
    pub fn with_salt(self, salt: impl Into<String>) -> Self {
        let mut next = Self::build(self.keyring, salt.into());
        next.timestamped = self.timestamped;
        next.max_age = self.max_age;
        next.clock = self.clock;
        next
    }

    /// Puts the signing time in every token.
    pub fn with_timestamps(mut self) -> Self {
        self.timestamped = true;
        self
    }

    /// Refuses tokens older than `max_age` (and tokens without a timestamp).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// Signs a string.
    ///
    /// # Errors
    /// [`Closed`] once the keyring has failed closed or its signing key is
    /// past its expiry ([`Keyring::signing_position`]): nothing signs then.
    pub fn sign(&self, value: &str) -> Result<String, Closed> {
        self.sign_bytes(value.as_bytes())
    }

    /// Signs bytes.
    ///
    /// # Errors
    /// As [`sign`](Self::sign).
    pub fn sign_bytes(&self, value: &[u8]) -> Result<String, Closed> {
        // Keyring::signing_position's rule, read from the generation's role
        // snapshot (the signing key's place is computed once per generation).
        if self.keyring.is_closed() {
            return Err(Closed::FailedClosed);
        }
        let derived = self.keys.get(&self.keyring);
        let roles = self.roles(&derived);
        let position = roles.signing();
        if roles.role(position) == Role::Retired {
            return Err(Closed::Expired);
        }
        let native = &derived.state.keys[position];
        let mut token = String::with_capacity(32 + value.len().div_ceil(3) * 4 + MAC_LEN);
        token.push_str(if self.timestamped { TIMED } else { UNTIMED });
        token.push('.');
        token.push_str(std::str::from_utf8(&native.kid_text).expect("base64 is ASCII"));
        token.push('.');
        if self.timestamped {
            let seconds = self
                .now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            token.push_str(&seconds.to_string());
            token.push('.');
        }
        B64.encode_string(value, &mut token);
        let mac = native.mac(token.as_bytes());
        token.push('.');
        B64.encode_string(mac, &mut token);
        Ok(token)
    }

    /// Signs a value as JSON.
    ///
    /// # Errors
    /// [`SignError::Json`] when the value is not JSON; [`SignError::Closed`]
    /// as [`sign`](Self::sign).
    pub fn sign_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<String, SignError> {
        Ok(self.sign_bytes(&serde_json::to_vec(value)?)?)
    }

    /// Verifies a token and returns its payload still base64url-encoded, without
    /// allocating: the hot path for callers that decode themselves.
    ///
    /// Costs one HMAC over the token whatever the number of keys held (the
    /// token names its key), and no write to memory shared between threads.
    ///
    /// Each refusal is counted where it is made (`rejected`): wrapping the
    /// whole result to inspect it made the accepted path build its result
    /// in a temporary and copy it out, which costs a store-forwarding stall.
    pub fn verify_encoded<'t>(&self, token: &'t str) -> Result<Verified<&'t str>, VerifyError> {
        let Ok(keys) = KeysNow::open(&self.keyring, &self.keys, self.clock) else {
            return Err(rejected(VerifyError::Stale));
        };
        let parsed = Parsed::parse(token).map_err(rejected)?;
        let found = keys.first_named(
            Format::Native,
            keys.state().with_kid(parsed.kid),
            |state, position| {
                let mut mac = state.keys[position].mac.clone();
                mac.update(parsed.signed.as_bytes());
                // Decoding the token's MAC (rather than encoding the computed
                // one) does not depend on the HMAC: placed between its first
                // block and its last ones, it is issued while those rounds, a
                // long chain of dependent instructions, are in flight, and costs
                // little. The decoder refuses non-canonical trailing bits: one
                // MAC has one text.
                let Some(text) = MacText::decode(parsed.mac) else {
                    return Err(VerifyError::Malformed("signature is not base64url of 32 bytes"));
                };
                let expected: [u8; 32] = mac.finalize().into_bytes().into();
                if !text.matches(&expected) {
                    return Ok(None);
                }
                let timestamp = parsed.timestamp.map(|s| UNIX_EPOCH + Duration::from_secs(s));
                if timestamp.is_some() || self.max_age.is_some() {
                    self.check_age(timestamp, self.now())?;
                }
                Ok(Some(timestamp))
            },
        );
        match found {
            Ok((timestamp, key)) => Ok(Verified {
                value: parsed.payload,
                key,
                timestamp,
            }),
            Err(Unverified::Refused(error)) => Err(rejected(error)),
            Err(Unverified::NoMatch) => Err(rejected(VerifyError::BadSignature)),
            Err(_) => Err(rejected(VerifyError::UnknownKey)),
        }
    }

    /// The roles for this call: the generation's snapshot (exact past its
    /// deadline), or computed at the test clock's time.
    fn roles<'a>(&self, derived: &'a Derived<NativeKeys>) -> RolesNow<'a> {
        match self.clock {
            None => derived.roles.now(&derived.keys),
            Some(clock) => RolesNow::At(&derived.keys, clock()),
        }
    }

    fn now(&self) -> SystemTime {
        self.clock.map_or_else(SystemTime::now, |clock| clock())
    }

    /// Verifies a token and returns the bytes that were signed.
    pub fn verify_bytes(&self, token: &str) -> Result<Verified<Vec<u8>>, VerifyError> {
        let verified = self.verify_encoded(token)?;
        let bytes = B64
            .decode(verified.value)
            .map_err(|_| rejected(VerifyError::Malformed("payload is not base64url")))?;
        Ok(verified.map(|_| bytes))
    }

    /// Verifies a token and returns the string that was signed.
    pub fn verify(&self, token: &str) -> Result<Verified<String>, VerifyError> {
        let verified = self.verify_bytes(token)?;
        let Verified {
            value,
            key,
            timestamp,
        } = verified;
        let value = String::from_utf8(value).map_err(|_| rejected(VerifyError::Payload("UTF-8")))?;
        Ok(Verified {
            value,
            key,
            timestamp,
        })
    }

    /// Verifies a token and decodes the JSON value that was signed.
    pub fn verify_value<T: DeserializeOwned>(&self, token: &str) -> Result<Verified<T>, VerifyError> {
        let verified = self.verify_bytes(token)?;
        let value =
            serde_json::from_slice(&verified.value).map_err(|_| rejected(VerifyError::Payload("JSON")))?;
        Ok(verified.map(|_| value))
    }

    fn check_age(&self, timestamp: Option<SystemTime>, now: SystemTime) -> Result<(), VerifyError> {
        let Some(signed_at) = timestamp else {
            return match self.max_age {
                Some(_) => Err(VerifyError::MissingTimestamp),
                None => Ok(()),
            };
        };
        match now.duration_since(signed_at) {
            Ok(age) => match self.max_age {
                Some(max_age) if age > max_age => Err(VerifyError::Expired { age, max_age }),
                _ => Ok(()),
            },
            Err(ahead) if ahead.duration() > MAX_CLOCK_SKEW => Err(VerifyError::FromTheFuture),
            Err(_) => Ok(()),
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("salt", &self.salt)
            .field("timestamped", &self.timestamped)
            .field("max_age", &self.max_age)
            .field("generation", &self.keyring.generation())
            .finish_non_exhaustive()
    }
}

/// What the native format needs per key of a set, derived once per key set
/// generation: the key id as it appears in tokens, the per-salt MAC state, and
/// a table from key id to keys, so that finding the key of a token costs the
/// same with 64 keys as with one.
struct NativeKeys {
    keys: Vec<NativeKey>,
    /// Open addressing with linear probing, at most half full: each slot holds
    /// a position in `keys` plus one, or 0 when empty.
    by_kid: Box<[u32]>,
}

struct NativeKey {
    kid_text: [u8; KID_LEN],
    mac: Hmac<Sha256>,
}

impl NativeKeys {
    fn derive(set: &KeySet, salt: &str) -> Self {
        let keys: Vec<NativeKey> = set
            .keys()
            .iter()
            .map(|key| {
                let mut derivation = key.keyed_mac().clone();
                derivation.update(b"keyroll/v1/native\0");
                derivation.update(salt.as_bytes());
                let mac_key = derivation.finalize().into_bytes();
                let mut kid_text = [0u8; KID_LEN];
                B64.encode_slice(key.kid(), &mut kid_text)
                    .expect("8 bytes encode to 11 characters");
                NativeKey {
                    kid_text,
                    mac: <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).expect("HMAC accepts 32-byte keys"),
                }
            })
            .collect();
        let mut by_kid = vec![0u32; (keys.len() * 2).next_power_of_two()].into_boxed_slice();
        let mask = by_kid.len() - 1;
        for (position, key) in keys.iter().enumerate() {
            let mut slot = kid_hash(&key.kid_text) & mask;
            while by_kid[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            by_kid[slot] = u32::try_from(position + 1).expect("fewer than 2^32 keys");
        }
        Self { keys, by_kid }
    }

    /// Positions of the keys whose key id reads `kid` (almost always one), in
    /// the set's order.
    fn with_kid<'a>(&'a self, kid: &'a [u8; KID_LEN]) -> impl Iterator<Item = usize> + 'a {
        let mask = self.by_kid.len() - 1;
        let start = kid_hash(kid) & mask;
        (0..self.by_kid.len())
            .map(move |step| self.by_kid[(start + step) & mask])
            .take_while(|&entry| entry != 0)
            .map(|entry| entry as usize - 1)
            .filter(move |&position| &self.keys[position].kid_text == kid)
    }
}

/// Counts a refused native token (see [`record_rejection`]) and passes on
/// its error. Cold: only refusals reach it.
#[cold]
#[inline(never)]
fn rejected(error: VerifyError) -> VerifyError {
    record_rejection(Format::Native, error.reason());
    error
}

/// Key ids are base64 of hash bytes, so their first characters are already
/// spread: one multiply mixes them into a table index.
fn kid_hash(kid: &[u8; KID_LEN]) -> usize {
    let head = u64::from_le_bytes(kid[..8].try_into().expect("sliced to 8"));
    (head.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
}

impl NativeKey {
    /// The MAC over `signed`.
    fn mac(&self, signed: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.finalize().into_bytes().into()
    }
}

/// A token split into its fields, borrowing from it.
struct Parsed<'t> {
    signed: &'t str,
    kid: &'t [u8; KID_LEN],
    timestamp: Option<u64>,
    payload: &'t str,
    mac: &'t [u8; MAC_LEN],
}

impl<'t> Parsed<'t> {
    /// Splits a token by position: the key id and MAC have fixed widths, so
    /// only the middle (timestamp, payload) is scanned.
    fn parse(token: &'t str) -> Result<Self, VerifyError> {
        let (timed, rest) = if let Some(rest) = token.strip_prefix("kr1t.") {
            (true, rest)
        } else if let Some(rest) = token.strip_prefix("kr1.") {
            (false, rest)
        } else if token.starts_with("kr") {
            return Err(VerifyError::Malformed("not a keyroll v1 token"));
        } else {
            return Err(VerifyError::Malformed("not a keyroll token"));
        };
        // kid "." middle "." mac
        let Some(middle_len) = rest.len().checked_sub(KID_LEN + 1 + 1 + MAC_LEN) else {
            return Err(VerifyError::Malformed("too short"));
        };
        let bytes = rest.as_bytes();
        let mac_start = KID_LEN + 1 + middle_len + 1;
        if bytes[KID_LEN] != b'.' {
            return Err(VerifyError::Malformed("key id is not 11 base64url characters"));
        }
        if bytes[mac_start - 1] != b'.' {
            return Err(VerifyError::Malformed("signature is not 43 base64url characters"));
        }
        let middle = &rest[KID_LEN + 1..mac_start - 1];
        let (timestamp, payload) = if timed {
            let (text, payload) = middle
                .split_once('.')
                .ok_or(VerifyError::Malformed("no timestamp"))?;
            if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VerifyError::Malformed("timestamp is not decimal seconds"));
            }
            let seconds = text
                .parse()
                .map_err(|_| VerifyError::Malformed("timestamp out of range"))?;
            (Some(seconds), payload)
        } else {
            (None, middle)
        };
        // No early exit: the compiler compares 16 or 32 bytes at a time.
        if payload.bytes().fold(false, |dot, b| dot | (b == b'.')) {
            return Err(VerifyError::Malformed("too many fields"));
        }
        let prefix_len = token.len() - rest.len();
        Ok(Self {
            signed: &token[..prefix_len + mac_start - 1],
            kid: bytes[..KID_LEN].try_into().expect("sliced to KID_LEN"),
            timestamp,
            payload,
            mac: bytes[mac_start..].try_into().expect("sliced to MAC_LEN"),
        })
    }
}
