//! Flask's `SecureCookieSessionInterface`: itsdangerous'
//! `URLSafeTimedSerializer` with salt `cookie-session`, `hmac` key
//! derivation and SHA-1.

use std::convert::Infallible;
use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keyroll_core::kit::{HmacAlgorithm, KeyedHmac, KeysNow, Unserved};
use keyroll_core::{DerivedCache, Format, KeySet, Keyring, Verified, VerifiedBy};
use keyroll_django::DEFAULT_MAX_DECOMPRESSED;
use keyroll_django::codec;

use crate::{Error, Value};

/// Flask's `SecureCookieSessionInterface.salt`.
pub const SESSION_SALT: &str = "cookie-session";

/// Flask's default `PERMANENT_SESSION_LIFETIME` (31 days): the maximum age
/// Flask passes when it opens any session cookie.
pub const PERMANENT_SESSION_LIFETIME: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// Length of a base64url SHA-1 signature.
const SIGNATURE_LEN: usize = 27;

/// Configures [`SecureCookieSessions`]; every default is Flask's.
#[derive(Debug)]
pub struct SecureCookieSessionsBuilder {
    keyring: Keyring,
    salt: String,
    max_age: Duration,
    max_decompressed: usize,
    clock: Option<fn() -> SystemTime>,
}

impl SecureCookieSessionsBuilder {
    /// The salt (Flask's `session_interface.salt`, default `cookie-session`).
    pub fn salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Accepts sessions up to `max_age` old (Flask's
    /// `PERMANENT_SESSION_LIFETIME`, default 31 days).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Bound on the inflated size of a compressed session (default 1 MiB,
    /// as the Django reader).
    pub fn max_decompressed_size(mut self, bytes: usize) -> Self {
        self.max_decompressed = bytes;
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    pub fn clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the serializer and derives its keys for the keyring's current set.
    pub fn build(self) -> SecureCookieSessions {
        let salt = self.salt.clone();
        let macs = DerivedCache::new(&self.keyring, move |set: &KeySet| {
            set.keys()
                .iter()
                .map(|key| {
                    KeyedHmac::new(HmacAlgorithm::Sha1, key.material().expose_secret())
                        .rekeyed(salt.as_bytes())
                })
                .collect::<Vec<_>>()
        });
        SecureCookieSessions {
            keyring: self.keyring,
            salt: self.salt,
            max_age: self.max_age,
            max_decompressed: self.max_decompressed,
            clock: self.clock,
            macs,
        }
    }
}

/// Reads and writes Flask's default session cookie, byte-identical to
/// Flask 3.1 with `SECRET_KEY` = the keyring's current key.
///
/// Flask ≥ 3.1.1 verifies with `SECRET_KEY`, then `SECRET_KEY_FALLBACKS`
/// from the last to the first; here the current key, pending keys, then
/// fallbacks newest first: the same order when `SECRET_KEY_FALLBACKS` lists
/// the old keys oldest first.
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_flask::{SecureCookieSessions, Value};
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let sessions = SecureCookieSessions::new(keyring);
/// let cookie = sessions.save(&Value::dict([("user_id", Value::from(42))])).unwrap();
/// let session = sessions.load(&cookie).unwrap();
/// assert_eq!(session.value, Value::dict([("user_id", Value::from(42))]));
/// assert!(!session.needs_resign());
/// ```
pub struct SecureCookieSessions {
    keyring: Keyring,
    salt: String,
    max_age: Duration,
    max_decompressed: usize,
    /// `None`: the system clock, and roles from the key set generation's snapshot.
    clock: Option<fn() -> SystemTime>,
    /// `HMAC-SHA1(HMAC-SHA1(secret, salt), ·)` per key, in the set's order.
    macs: DerivedCache<Vec<KeyedHmac>>,
}

impl SecureCookieSessions {
    /// Flask's defaults: salt `cookie-session`, 31 days.
    pub fn new(keyring: Keyring) -> Self {
        Self::builder(keyring).build()
    }

    /// Configures the serializer.
    pub fn builder(keyring: Keyring) -> SecureCookieSessionsBuilder {
        SecureCookieSessionsBuilder {
            keyring,
            salt: SESSION_SALT.to_owned(),
            max_age: PERMANENT_SESSION_LIFETIME,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            clock: None,
        }
    }

    /// The cookie value for `session` (`save_session`): tagged JSON,
    /// zlib-compressed when that saves at least 2 bytes (then marked by a
    /// leading `.`), a timestamp and the signature of the current key.
    pub fn save(&self, session: &Value) -> Result<String, Error> {
        let json = session.to_tagged_json()?;
        let now = self.now();
        // URLSafeSerializer compresses whenever that saves at least 2 bytes.
        let mut cookie = codec::encode_payload(json.as_bytes(), true);
        // itsdangerous' int_to_bytes: big-endian, leading zero bytes dropped.
        let seconds = u64::try_from(codec::unix_seconds(now)).unwrap_or(0).to_be_bytes();
        let first = seconds.iter().position(|&b| b != 0).unwrap_or(seconds.len());
        cookie.push('.');
        B64.encode_string(&seconds[first..], &mut cookie);

        let derived = self.macs.get(&self.keyring);
        let index = self
            .keyring
            .signing_position(&derived.keys, now)
            .map_err(Unserved::from)?;
        let mut signature = String::with_capacity(SIGNATURE_LEN);
        derived.state[index].sign_into(cookie.as_bytes(), &mut signature);
        cookie.push('.');
        cookie.push_str(&signature);
        Ok(cookie)
    }

    /// The session in a cookie value (`open_session`), with the key that
    /// verified it and the time it was signed. Flask starts an empty
    /// session on any error; [`Error::is_bad_signature`] tells the
    /// untrusted cases apart.
    pub fn load(&self, cookie: &str) -> Result<Verified<Value>, Error> {
        self.check(cookie).inspect_err(Error::count)
    }

    /// [`load`](Self::load) without counting a refusal.
    fn check(&self, cookie: &str) -> Result<Verified<Value>, Error> {
        let now = self.now();
        let (stamped, key) = self.unsign(cookie)?;
        let (payload, timestamp) = stamped.rsplit_once('.').ok_or(Error::BadTimestamp)?;
        let signed_at = self.check_age(timestamp, now)?;
        let value = self.decode(payload)?;
        Ok(Verified {
            value,
            key,
            timestamp: Some(signed_at),
        })
    }

    /// The signature check: current key, pending keys, then fallbacks newest first.
    fn unsign<'c>(&self, cookie: &'c str) -> Result<(&'c str, VerifiedBy), Error> {
        let keys =
            KeysNow::open(&self.keyring, &self.macs, self.clock).map_err(|_| Error::Keys(Unserved::Stale))?;
        let (stamped, signature) = cookie.rsplit_once('.').ok_or(Error::MissingSeparator)?;
        if signature.len() != SIGNATURE_LEN {
            return Err(Error::BadSignature);
        }
        let mut raw = [0u8; 20];
        B64.decode_slice(signature, &mut raw)
            .map_err(|_| Error::BadSignature)?;
        let ((), key) = keys
            .first_verifying(Format::Flask, |macs, position| {
                Ok::<_, Infallible>(macs[position].verify(stamped.as_bytes(), &raw).then_some(()))
            })
            .map_err(|_| Error::BadSignature)?;
        Ok((stamped, key))
    }

    fn now(&self) -> SystemTime {
        self.clock.map_or_else(SystemTime::now, |clock| clock())
    }

    /// itsdangerous' `bytes_to_int(base64_decode(ts))` and its age check:
    /// too old or from the future fails.
    fn check_age(&self, timestamp: &str, now: SystemTime) -> Result<SystemTime, Error> {
        let bytes = codec::LENIENT_B64
            .decode(timestamp)
            .map_err(|_| Error::BadTimestamp)?;
        if bytes.len() > 8 {
            return Err(Error::BadTimestamp);
        }
        let mut seconds = [0u8; 8];
        seconds[8 - bytes.len()..].copy_from_slice(&bytes);
        let seconds = u64::from_be_bytes(seconds);
        let signed_at = codec::time_of(i64::try_from(seconds).map_err(|_| Error::BadTimestamp)?);
        let whole_now = codec::time_of(codec::unix_seconds(now));
        match whole_now.duration_since(signed_at) {
            Ok(age) if age > self.max_age => Err(Error::Expired {
                age,
                max_age: self.max_age,
            }),
            Ok(_) => Ok(signed_at),
            Err(ahead) => Err(Error::FromTheFuture {
                ahead: ahead.duration(),
            }),
        }
    }

    /// `load_payload`: strip `.`, decode, inflate (bounded), untag.
    fn decode(&self, payload: &str) -> Result<Value, Error> {
        let data = codec::decode_payload(payload, self.max_decompressed)?;
        let json = serde_json::from_slice(&data).map_err(|_| Error::Payload { what: "JSON" })?;
        Value::untag(json)
    }
}

impl fmt::Debug for SecureCookieSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureCookieSessions")
            .field("salt", &self.salt)
            .field("max_age", &self.max_age)
            .field("max_decompressed", &self.max_decompressed)
            .field("generation", &self.keyring.generation())
            .finish_non_exhaustive()
    }
}
