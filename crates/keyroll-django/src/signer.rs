//! Django's `Signer` and `TimestampSigner`, signing with the keyring's current
//! key and verifying with every key the keyring accepts.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keyroll_core::kit::{KeyedHmac, KeysNow, Unserved};
use keyroll_core::{
    Closed, DerivedCache, Format, KeySet, Keyring, MAC_TEXT_LEN, MacText, Verified, VerifiedBy,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, time_of, unix_seconds};
use crate::{Algorithm, ConfigError, Error, base62, json};

/// Default salt of [`Signer`]: Django's `"%s.%s" % (module, class name)`.
pub const SIGNER_SALT: &str = "django.core.signing.Signer";
/// Default salt of [`TimestampSigner`].
pub const TIMESTAMP_SIGNER_SALT: &str = "django.core.signing.TimestampSigner";
/// Default separator.
pub const DEFAULT_SEPARATOR: &str = ":";
/// Default bound on the inflated size of a compressed signed object: 1 MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 1 << 20;

/// Settings shared by every signer kind. No secrets in here.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) salt: String,
    pub(crate) separator: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) legacy: Vec<Algorithm>,
    /// Bytes put in front of every secret (`b"django.http.cookies"` for cookies).
    pub(crate) key_prefix: &'static [u8],
    /// `None`: the system clock, and roles from the key set generation's snapshot.
    pub(crate) clock: Option<fn() -> SystemTime>,
    pub(crate) max_decompressed: usize,
}

impl Options {
    pub(crate) fn new(salt: &str) -> Self {
        Self {
            salt: salt.to_owned(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            algorithm: Algorithm::default(),
            legacy: Vec::new(),
            key_prefix: b"",
            clock: None,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
        }
    }
}

/// True when Django's `_SEP_UNSAFE = r"^[A-z0-9-_=]*$"` matches `separator`
/// (`$` also matches before one final newline; `[A-z]` includes `[\]^_\``).
fn separator_is_unsafe(separator: &str) -> bool {
    let body = separator.strip_suffix('\n').unwrap_or(separator);
    body.chars()
        .all(|c| matches!(c, 'A'..='z' | '0'..='9' | '-' | '='))
}

/// One MAC state per key of the set, for each accepted algorithm; the first
/// algorithm signs.
struct Macs {
    by_algorithm: Vec<(Algorithm, Vec<KeyedHmac>)>,
}

fn derive_macs(set: &KeySet, salt: &str, key_prefix: &[u8], algorithms: &[Algorithm]) -> Macs {
    let by_algorithm = algorithms
        .iter()
        .map(|&algorithm| {
            let macs = set
                .keys()
                .iter()
                .map(|key| {
                    KeyedHmac::derived(
                        algorithm,
                        &[
                            salt.as_bytes(),
                            b"signer",
                            key_prefix,
                            key.material().expose_secret(),
                        ],
                    )
                })
                .collect();
            (algorithm, macs)
        })
        .collect();
    Macs { by_algorithm }
}

/// The plain signer every public kind is built on: `value + sep + signature`.
pub(crate) struct Core {
    keyring: Keyring,
    options: Options,
    /// The separator when it is one character (the usual case): searched
    /// with `memrchr` instead of a substring search.
    separator_char: Option<char>,
    /// The separator when it is one ASCII character (`:` by default).
    separator_byte: Option<u8>,
    macs: DerivedCache<Macs>,
}

impl Core {
    pub(crate) fn new(keyring: Keyring, options: Options) -> Result<Self, ConfigError> {
        if separator_is_unsafe(&options.separator) {
            return Err(ConfigError::UnsafeSeparator(options.separator));
        }
        let mut algorithms = vec![options.algorithm];
        for &legacy in &options.legacy {
            if !algorithms.contains(&legacy) {
                algorithms.push(legacy);
            }
        }
        let salt = options.salt.clone();
        let key_prefix = options.key_prefix;
        let mut chars = options.separator.chars();
        let separator_char = chars.next().filter(|_| chars.next().is_none());
        let separator_byte = separator_char
            .filter(char::is_ascii)
            .and_then(|c| u8::try_from(c).ok());
        let macs = DerivedCache::new(&keyring, move |set: &KeySet| {
            derive_macs(set, &salt, key_prefix, &algorithms)
        });
        Ok(Self {
            keyring,
            options,
            separator_char,
            separator_byte,
            macs,
        })
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.options.clock.map_or_else(SystemTime::now, |clock| clock())
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// `value + sep + signature(value)` with the key that signs at `now`.
    pub(crate) fn sign(&self, value: &str, now: SystemTime) -> Result<String, Closed> {
        let derived = self.macs.get(&self.keyring);
        let position = self.keyring.signing_position(&derived.keys, now)?;
        let (_, macs) = &derived.state.by_algorithm[0];
        let mut signed = String::with_capacity(value.len() + self.options.separator.len() + 88);
        signed.push_str(value);
        signed.push_str(&self.options.separator);
        macs[position].sign_into(value.as_bytes(), &mut signed);
        Ok(signed)
    }

    /// Splits off and checks the signature: current key first, then pending
    /// keys, then fallbacks newest first.
    pub(crate) fn unsign<'t>(&self, signed: &'t str) -> Result<(&'t str, VerifiedBy), Error> {
        let keys = KeysNow::open(&self.keyring, &self.macs, self.options.clock)
            .map_err(|_| Error::Keys(Unserved::Stale))?;
        // SHA-256 (Django's default) with a one-byte separator: when the 43
        // last characters are a MAC's text and the separator precedes them,
        // that is the last separator (Django refuses separators made of
        // base64url characters), so no search is needed.
        let bytes = signed.as_bytes();
        if let Some(separator) = self.separator_byte
            && let Some(at) = bytes.len().checked_sub(MAC_TEXT_LEN + 1)
            && bytes[at] == separator
            && let Some(text) = MacText::decode(&bytes[at + 1..])
        {
            return Self::verify_sha256(&keys, &signed[..at], &text);
        }
        let split = match self.separator_char {
            Some(separator) => signed.rsplit_once(separator),
            None => signed.rsplit_once(self.options.separator.as_str()),
        };
        let (value, signature) = split.ok_or_else(|| Error::MissingSeparator {
            separator: self.options.separator.clone(),
        })?;
        if signature.len() == MAC_TEXT_LEN {
            // SHA-256 again (SHA-1 signatures have 27 characters, SHA-512
            // 86); MacText accepts what the strict decoder below accepts.
            let text = MacText::decode(signature.as_bytes()).ok_or(Error::BadSignature)?;
            return Self::verify_sha256(&keys, value, &text);
        }
        if signature.len() > Algorithm::Sha512.signature_len() {
            return Err(Error::BadSignature);
        }
        // Strict decoding (no padding, no stray bits) accepts exactly the
        // strings Django's string comparison accepts.
        let mut raw = [0u8; 72];
        let length = B64
            .decode_slice(signature, &mut raw)
            .map_err(|_| Error::BadSignature)?;
        let Some(index) = keys
            .state()
            .by_algorithm
            .iter()
            .position(|(algorithm, _)| algorithm.digest_len() == length)
        else {
            return Err(Error::BadSignature);
        };
        let signature = &raw[..length];
        let macs = &keys.state().by_algorithm[index].1;
        Self::first_match(&keys, |position| {
            macs[position].verify(value.as_bytes(), signature)
        })
        .map(|key| (value, key))
    }

    /// Checks a SHA-256 signature, decoded to four words, which the computed
    /// MACs are compared with.
    fn verify_sha256<'t>(
        keys: &KeysNow<'_, Macs>,
        value: &'t str,
        text: &MacText,
    ) -> Result<(&'t str, VerifiedBy), Error> {
        let Some(index) = keys
            .state()
            .by_algorithm
            .iter()
            .position(|(algorithm, _)| *algorithm == Algorithm::Sha256)
        else {
            return Err(Error::BadSignature);
        };
        let macs = &keys.state().by_algorithm[index].1;
        Self::first_match(keys, |position| {
            macs[position].verify_text(value.as_bytes(), text)
        })
        .map(|key| (value, key))
    }

    /// The first verifying key (current, pending, fallbacks newest first)
    /// for which `matches` holds.
    #[inline]
    fn first_match(
        keys: &KeysNow<'_, Macs>,
        mut matches: impl FnMut(usize) -> bool,
    ) -> Result<VerifiedBy, Error> {
        match keys.first_verifying(Format::Django, |_, position| {
            Ok::<_, Infallible>(matches(position).then_some(()))
        }) {
            Ok(((), key)) => Ok(key),
            Err(_) => Err(Error::BadSignature),
        }
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("salt", &self.options.salt)
            .field("separator", &self.options.separator)
            .field("algorithm", &self.options.algorithm)
            .field("legacy", &self.options.legacy)
            .field("generation", &self.keyring.generation())
            .finish_non_exhaustive()
    }
}

fn nanos_since_epoch(at: SystemTime) -> i128 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// Django's check: `time.time() - timestamp > max_age` fails. A timestamp in
/// the future passes, as in Django.
fn check_age(signed_at: i64, now: SystemTime, max_age: Option<Duration>) -> Result<(), Error> {
    let Some(max_age) = max_age else {
        return Ok(());
    };
    let age = nanos_since_epoch(now) - i128::from(signed_at) * 1_000_000_000;
    if age > max_age.as_nanos() as i128 {
        let age = Duration::new(
            u64::try_from(age / 1_000_000_000).unwrap_or(u64::MAX),
            (age % 1_000_000_000) as u32,
        );
        return Err(Error::SignatureExpired { age, max_age });
    }
    Ok(())
}

/// Django's `sign_object` payload: Python-style JSON, zlib-compressed when
/// asked and when that saves at least 2 bytes (then marked by a leading `.`),
/// base64url without padding.
pub(crate) fn encode_object<T: Serialize + ?Sized>(value: &T, compress: bool) -> Result<String, Error> {
    let data = json::to_python_json(value).map_err(|e| Error::Serialize(e.to_string()))?;
    Ok(codec::encode_payload(data.as_bytes(), compress))
}

/// Django's `unsign_object` after the signature check: strip `.`, decode,
/// inflate (at most `limit` bytes), parse JSON (as UTF-8, like Django 6).
pub(crate) fn decode_object<T: DeserializeOwned>(payload: &str, limit: usize) -> Result<T, Error> {
    let data = codec::decode_payload(payload, limit)?;
    serde_json::from_slice(&data).map_err(|_| Error::Payload { what: "JSON" })
}

/// Configures a [`Signer`] or [`TimestampSigner`]; every default is Django's.
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_django::{Algorithm, Signer};
///
/// let keyring = Keyring::new(KeySet::single_with_strength("v1", KeyMaterial::from("predictable-secret"), &keyroll_core::KeyStrength::any_non_empty()).unwrap());
/// let signer = Signer::builder(keyring).salt("extra").separator("/").accept_legacy(Algorithm::Sha1).build()?;
/// assert_eq!(signer.sign("hello").unwrap(), "hello/e3m_xPu0LyRVmRanDRnQV8PdEEIWCQlolm6HK02XZwA");
/// # Ok::<(), keyroll_django::ConfigError>(())
/// ```
pub struct SignerBuilder<S> {
    keyring: Keyring,
    options: Options,
    kind: PhantomData<fn() -> S>,
}

impl<S> SignerBuilder<S> {
    fn new(keyring: Keyring, salt: &str) -> Self {
        Self {
            keyring,
            options: Options::new(salt),
            kind: PhantomData,
        }
    }

    /// Namespaces signatures: a value signed with one salt never verifies with
    /// another. Django's default is the class name.
    pub fn salt(mut self, salt: impl Into<String>) -> Self {
        self.options.salt = salt.into();
        self
    }

    /// The separator between value, timestamp and signature (default `:`).
    /// [`build`](SignerBuilder::build) refuses separators Django refuses.
    pub fn separator(mut self, separator: impl Into<String>) -> Self {
        self.options.separator = separator.into();
        self
    }

    /// The algorithm that signs and verifies (default sha256).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.options.algorithm = algorithm;
        self
    }

    /// Also accepts signatures made with `algorithm` (for example sha1 values
    /// from before Django 3.1). The algorithm is recognised from the length of
    /// the signature, so this costs nothing on other values.
    pub fn accept_legacy(mut self, algorithm: Algorithm) -> Self {
        self.options.legacy.push(algorithm);
        self
    }

    /// Bound on the inflated size of a compressed signed object (default 1 MiB).
    pub fn max_decompressed_size(mut self, bytes: usize) -> Self {
        self.options.max_decompressed = bytes;
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    pub fn clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.options.clock = Some(clock);
        self
    }
}

impl SignerBuilder<Signer> {
    /// Builds the signer and derives its keys for the keyring's current set.
    pub fn build(self) -> Result<Signer, ConfigError> {
        Ok(Signer {
            core: Core::new(self.keyring, self.options)?,
        })
    }
}

impl SignerBuilder<TimestampSigner> {
    /// Builds the signer and derives its keys for the keyring's current set.
    pub fn build(self) -> Result<TimestampSigner, ConfigError> {
        Ok(TimestampSigner {
            core: Core::new(self.keyring, self.options)?,
        })
    }
}

impl<S> fmt::Debug for SignerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Django's `django.core.signing.Signer`: `value:signature`, no timestamp.
///
/// Signs with the keyring's current key; verifies with the current key, then
/// pending keys, then fallbacks (Django's `SECRET_KEY`, then
/// `SECRET_KEY_FALLBACKS`), and says which one matched.
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_django::Signer;
///
/// let keyring = Keyring::new(KeySet::single_with_strength("v1", KeyMaterial::from("predictable-secret"), &keyroll_core::KeyStrength::any_non_empty()).unwrap());
/// let signer = Signer::new(keyring);
/// let signed = signer.sign("foo").unwrap();
/// assert_eq!(signed, "foo:jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0");
/// let verified = signer.verify(&signed).unwrap();
/// assert_eq!(verified.value, "foo");
/// assert_eq!(&*verified.key.id, "v1");
/// assert!(!verified.needs_resign());
/// ```
#[derive(Debug)]
pub struct Signer {
    core: Core,
}

impl Signer {
    /// A signer with Django's defaults: salt `django.core.signing.Signer`,
    /// separator `:`, sha256.
    pub fn new(keyring: Keyring) -> Self {
        Self::builder(keyring)
            .build()
            .expect("Django's defaults are valid")
    }

    /// Configures a signer.
    pub fn builder(keyring: Keyring) -> SignerBuilder<Signer> {
        SignerBuilder::new(keyring, SIGNER_SALT)
    }

    /// The salt.
    pub fn salt(&self) -> &str {
        &self.core.options().salt
    }

    /// `value:signature` with the current key (Django's `sign`).
    ///
    /// # Errors
    /// [`Closed`] once the keyring has failed closed or its signing key is
    /// past its expiry: nothing signs then.
    pub fn sign(&self, value: &str) -> Result<String, Closed> {
        self.core.sign(value, self.core.now())
    }

    /// Checks the signature and returns the value (Django's `unsign`), with
    /// the key that verified it.
    #[doc(alias = "unsign")]
    pub fn verify<'t>(&self, signed: &'t str) -> Result<Verified<&'t str>, Error> {
        self.check(signed).inspect_err(Error::count)
    }

    /// [`verify`](Self::verify) without counting a refusal.
    fn check<'t>(&self, signed: &'t str) -> Result<Verified<&'t str>, Error> {
        let (value, key) = self.core.unsign(signed)?;
        Ok(Verified {
            value,
            key,
            timestamp: None,
        })
    }

    /// Signs `value` as JSON, compressed when asked and worthwhile (Django's
    /// `sign_object`).
    pub fn sign_object<T: Serialize + ?Sized>(&self, value: &T, compress: bool) -> Result<String, Error> {
        Ok(self
            .sign(&encode_object(value, compress)?)
            .map_err(Unserved::from)?)
    }

    /// Verifies and decodes a signed object (Django's `unsign_object`).
    #[doc(alias = "unsign_object")]
    pub fn verify_object<T: DeserializeOwned>(&self, signed: &str) -> Result<Verified<T>, Error> {
        let decoded = self.check(signed).and_then(|verified| {
            let value = decode_object(verified.value, self.core.options().max_decompressed)?;
            Ok(Verified {
                value,
                key: verified.key,
                timestamp: None,
            })
        });
        decoded.inspect_err(Error::count)
    }
}

/// Django's `django.core.signing.TimestampSigner`:
/// `value:timestamp:signature`, the timestamp in base62 seconds.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_django::TimestampSigner;
///
/// let keyring = Keyring::new(KeySet::single_with_strength("v1", KeyMaterial::from("predictable-secret"), &keyroll_core::KeyStrength::any_non_empty()).unwrap());
/// let at = || SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let signer = TimestampSigner::builder(keyring).clock(at).build().unwrap();
/// let signed = signer.sign("hello").unwrap();
/// assert_eq!(signed, "hello:1r31eq:ESnvh0UG3MKjmlEh8oOo4AB3aBbzEzE2OxtKdYRmPIU");
/// assert_eq!(signer.verify(&signed, Some(Duration::from_secs(60))).unwrap().value, "hello");
/// ```
#[derive(Debug)]
pub struct TimestampSigner {
    core: Core,
}

impl TimestampSigner {
    /// A signer with Django's defaults: salt
    /// `django.core.signing.TimestampSigner`, separator `:`, sha256.
    pub fn new(keyring: Keyring) -> Self {
        Self::builder(keyring)
            .build()
            .expect("Django's defaults are valid")
    }

    /// Configures a signer.
    pub fn builder(keyring: Keyring) -> SignerBuilder<TimestampSigner> {
        SignerBuilder::new(keyring, TIMESTAMP_SIGNER_SALT)
    }

    pub(crate) fn from_options(keyring: Keyring, options: Options) -> Result<Self, ConfigError> {
        Ok(Self {
            core: Core::new(keyring, options)?,
        })
    }

    /// The salt.
    pub fn salt(&self) -> &str {
        &self.core.options().salt
    }

    /// `value:timestamp:signature` with the current key and the clock's time.
    ///
    /// # Errors
    /// As [`Signer::sign`].
    pub fn sign(&self, value: &str) -> Result<String, Closed> {
        self.sign_issued(value, self.core.now())
    }

    /// `value:timestamp:signature` with the current key and the timestamp
    /// `issued`: re-signing a value verified with a superseded key keeps its
    /// first issue time, so re-issuing never extends its life.
    ///
    /// # Errors
    /// As [`Signer::sign`].
    pub fn sign_issued(&self, value: &str, issued: SystemTime) -> Result<String, Closed> {
        let options = self.core.options();
        let mut stamped = String::with_capacity(value.len() + options.separator.len() + 8);
        stamped.push_str(value);
        stamped.push_str(&options.separator);
        stamped.push_str(&base62::encode(unix_seconds(issued)));
        self.core.sign(&stamped, self.core.now())
    }

    /// Checks the signature, then that the value is at most `max_age` old
    /// (Django's `unsign(value, max_age)`; future timestamps pass, as in Django).
    #[doc(alias = "unsign")]
    pub fn verify<'t>(&self, signed: &'t str, max_age: Option<Duration>) -> Result<Verified<&'t str>, Error> {
        self.check(signed, max_age).inspect_err(Error::count)
    }

    /// [`verify`](Self::verify) without counting a refusal: for callers that
    /// try more than one signer and count once.
    pub(crate) fn check<'t>(
        &self,
        signed: &'t str,
        max_age: Option<Duration>,
    ) -> Result<Verified<&'t str>, Error> {
        let (stamped, key) = self.core.unsign(signed)?;
        let now = self.core.now();
        let (value, timestamp) = stamped
            .rsplit_once(self.core.options().separator.as_str())
            .ok_or(Error::BadTimestamp)?;
        let seconds = base62::decode(timestamp).ok_or(Error::BadTimestamp)?;
        check_age(seconds, now, max_age)?;
        Ok(Verified {
            value,
            key,
            timestamp: Some(time_of(seconds)),
        })
    }

    /// Signs `value` as JSON with a timestamp, compressed when asked and
    /// worthwhile. With salt [`DUMPS_SALT`](crate::DUMPS_SALT) this is
    /// Django's `signing.dumps`.
    #[doc(alias = "dumps")]
    pub fn sign_object<T: Serialize + ?Sized>(&self, value: &T, compress: bool) -> Result<String, Error> {
        Ok(self
            .sign(&encode_object(value, compress)?)
            .map_err(Unserved::from)?)
    }

    /// [`sign_object`](Self::sign_object) with the timestamp `issued` (see
    /// [`sign_issued`](Self::sign_issued)).
    pub fn sign_object_issued<T: Serialize + ?Sized>(
        &self,
        value: &T,
        compress: bool,
        issued: SystemTime,
    ) -> Result<String, Error> {
        Ok(self
            .sign_issued(&encode_object(value, compress)?, issued)
            .map_err(Unserved::from)?)
    }

    /// Verifies, checks the age of and decodes a signed object. With salt
    /// [`DUMPS_SALT`](crate::DUMPS_SALT) this is Django's `signing.loads`.
    #[doc(alias = "loads")]
    pub fn verify_object<T: DeserializeOwned>(
        &self,
        signed: &str,
        max_age: Option<Duration>,
    ) -> Result<Verified<T>, Error> {
        let decoded = self.check(signed, max_age).and_then(|verified| {
            let value = decode_object(verified.value, self.core.options().max_decompressed)?;
            Ok(Verified {
                value,
                key: verified.key,
                timestamp: verified.timestamp,
            })
        });
        decoded.inspect_err(Error::count)
    }
}
