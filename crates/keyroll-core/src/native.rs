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
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::{DerivedCache, KeySet, Keyring, Role};

const UNTIMED: &str = "kr1";
const TIMED: &str = "kr1t";
const KID_LEN: usize = 11;
const MAC_LEN: usize = 43;

/// How far in the future a token's timestamp may be (clock skew between
/// replicas) before it is refused.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

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
}

/// Which key verified a token, so callers can re-sign on read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBy {
    /// The store's version id of the key.
    pub id: Arc<str>,
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
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")));
/// let signer = Signer::new(keyring).with_salt("sessions");
/// let token = signer.sign("user=42");
/// let verified = signer.verify(&token).unwrap();
/// assert_eq!(verified.value, "user=42");
/// assert!(!verified.needs_resign());
/// ```
pub struct Signer {
    keyring: Keyring,
    salt: String,
    timestamped: bool,
    max_age: Option<Duration>,
    clock: fn() -> SystemTime,
    keys: DerivedCache<Vec<Hmac<Sha256>>>,
}

impl Signer {
    /// A signer with an empty salt, no timestamps, reading `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self::build(keyring, String::new())
    }

    fn build(keyring: Keyring, salt: String) -> Self {
        let derive_salt = salt.clone();
        let keys = DerivedCache::new(&keyring, move |set: &KeySet| derive_keys(set, &derive_salt));
        Self {
            keyring,
            salt,
            timestamped: false,
            max_age: None,
            clock: SystemTime::now,
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
        self.clock = clock;
        self
    }

    /// The salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// Signs a string.
    pub fn sign(&self, value: &str) -> String {
        self.sign_bytes(value.as_bytes())
    }

    /// Signs bytes.
    pub fn sign_bytes(&self, value: &[u8]) -> String {
        let now = (self.clock)();
        let derived = self.keys.get(&self.keyring);
        let key = derived.keys.signing_key_at(now);
        let position = derived
            .keys
            .keys()
            .iter()
            .position(|k| std::ptr::eq(k, key))
            .expect("the signing key belongs to its set");
        let mut token = String::with_capacity(32 + value.len() * 4 / 3 + MAC_LEN);
        token.push_str(if self.timestamped { TIMED } else { UNTIMED });
        token.push('.');
        B64.encode_string(key.kid(), &mut token);
        token.push('.');
        if self.timestamped {
            let seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            token.push_str(&seconds.to_string());
            token.push('.');
        }
        B64.encode_string(value, &mut token);
        let mut mac = derived.state[position].clone();
        mac.update(token.as_bytes());
        token.push('.');
        B64.encode_string(mac.finalize().into_bytes(), &mut token);
        token
    }

    /// Signs a value as JSON.
    pub fn sign_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<String, serde_json::Error> {
        Ok(self.sign_bytes(&serde_json::to_vec(value)?))
    }

    /// Verifies a token and returns its payload still base64url-encoded, without
    /// allocating: the hot path for callers that decode themselves.
    pub fn verify_encoded<'t>(&self, token: &'t str) -> Result<Verified<&'t str>, VerifyError> {
        let now = (self.clock)();
        let parsed = Parsed::parse(token)?;
        let derived = self.keys.get(&self.keyring);
        let mut known = false;
        for &position in derived.keys.positions_of_kid(&parsed.kid) {
            let key = &derived.keys.keys()[position];
            let role = key.role_at(now);
            if role == Role::Retired {
                continue;
            }
            known = true;
            let mut mac = derived.state[position].clone();
            mac.update(parsed.signed.as_bytes());
            if mac.verify_slice(&parsed.mac).is_ok() {
                let timestamp = parsed.timestamp.map(|s| UNIX_EPOCH + Duration::from_secs(s));
                self.check_age(timestamp, now)?;
                key.record_verification();
                return Ok(Verified {
                    value: parsed.payload,
                    key: VerifiedBy {
                        id: key.shared_id(),
                        role,
                    },
                    timestamp,
                });
            }
        }
        Err(if known {
            VerifyError::BadSignature
        } else {
            VerifyError::UnknownKey
        })
    }

    /// Verifies a token and returns the bytes that were signed.
    pub fn verify_bytes(&self, token: &str) -> Result<Verified<Vec<u8>>, VerifyError> {
        let verified = self.verify_encoded(token)?;
        let bytes = B64
            .decode(verified.value)
            .map_err(|_| VerifyError::Malformed("payload is not base64url"))?;
        Ok(verified.map(|_| bytes))
    }

    /// Verifies a token and returns the string that was signed.
    pub fn verify(&self, token: &str) -> Result<Verified<String>, VerifyError> {
        let verified = self.verify_bytes(token)?;
        let Verified { value, key, timestamp } = verified;
        let value = String::from_utf8(value).map_err(|_| VerifyError::Payload("UTF-8"))?;
        Ok(Verified { value, key, timestamp })
    }

    /// Verifies a token and decodes the JSON value that was signed.
    pub fn verify_value<T: DeserializeOwned>(&self, token: &str) -> Result<Verified<T>, VerifyError> {
        let verified = self.verify_bytes(token)?;
        let value = serde_json::from_slice(&verified.value).map_err(|_| VerifyError::Payload("JSON"))?;
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

/// Per-salt MAC states, one per key of the set, in the set's order.
fn derive_keys(set: &KeySet, salt: &str) -> Vec<Hmac<Sha256>> {
    set.keys()
        .iter()
        .map(|key| {
            let mut derivation = key.keyed_mac().clone();
            derivation.update(b"keyroll/v1/native\0");
            derivation.update(salt.as_bytes());
            let mac_key = derivation.finalize().into_bytes();
            <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).expect("HMAC accepts 32-byte keys")
        })
        .collect()
}

/// A token split into its fields, borrowing from it.
struct Parsed<'t> {
    signed: &'t str,
    kid: [u8; 8],
    timestamp: Option<u64>,
    payload: &'t str,
    mac: [u8; 32],
}

impl<'t> Parsed<'t> {
    fn parse(token: &'t str) -> Result<Self, VerifyError> {
        let (signed, mac_text) = token.rsplit_once('.').ok_or(VerifyError::Malformed("no signature"))?;
        let mut fields = signed.split('.');
        let timed = match fields.next() {
            Some(UNTIMED) => false,
            Some(TIMED) => true,
            _ => return Err(VerifyError::Malformed("not a keyroll v1 token")),
        };
        let kid_text = fields.next().ok_or(VerifyError::Malformed("no key id"))?;
        let timestamp = if timed {
            let text = fields.next().ok_or(VerifyError::Malformed("no timestamp"))?;
            if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VerifyError::Malformed("timestamp is not decimal seconds"));
            }
            Some(text.parse().map_err(|_| VerifyError::Malformed("timestamp out of range"))?)
        } else {
            None
        };
        let payload = fields.next().ok_or(VerifyError::Malformed("no payload"))?;
        if fields.next().is_some() {
            return Err(VerifyError::Malformed("too many fields"));
        }
        Ok(Self {
            signed,
            kid: decode_fixed(kid_text, KID_LEN, "key id")?,
            timestamp,
            payload,
            mac: decode_fixed(mac_text, MAC_LEN, "signature")?,
        })
    }
}

/// Decodes base64url text of exactly `text_len` characters into `N` bytes,
/// without allocating.
fn decode_fixed<const N: usize>(text: &str, text_len: usize, what: &'static str) -> Result<[u8; N], VerifyError> {
    let malformed = || {
        VerifyError::Malformed(match what {
            "key id" => "key id is not 11 base64url characters",
            _ => "signature is not 43 base64url characters",
        })
    };
    if text.len() != text_len {
        return Err(malformed());
    }
    let mut buffer = [0u8; 48];
    let written = B64.decode_slice(text, &mut buffer).map_err(|_| malformed())?;
    if written != N {
        return Err(malformed());
    }
    let mut out = [0u8; N];
    out.copy_from_slice(&buffer[..N]);
    Ok(out)
}
