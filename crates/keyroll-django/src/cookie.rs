//! Django's signed cookies: `HttpResponse.set_signed_cookie` and
//! `HttpRequest.get_signed_cookie`, with the v2 salt of CVE-2026-6873 and the
//! legacy-salt fallback for cookies set before it.

use std::time::{Duration, SystemTime};

use keyroll_core::{Keyring, Role, Verified, VerifiedBy};

use crate::signer::{Options, TIMESTAMP_SIGNER_SALT};
use crate::{Error, TimestampSigner};

/// What Django puts in front of every secret for cookie signing
/// (`_cookie_signer_key`).
pub const COOKIE_KEY_PREFIX: &[u8] = b"django.http.cookies";

/// The salt Django 5.2.15+ signs cookies with: the salt argument's length
/// (in characters) makes `(cookie_name, salt)` pairs unambiguous.
///
/// ```
/// assert_eq!(keyroll_django::cookie::cookie_salt("theme", "ui"), "django.http.cookies.v2:2:uitheme");
/// ```
pub fn cookie_salt(cookie_name: &str, salt: &str) -> String {
    format!(
        "django.http.cookies.v2:{}:{salt}{cookie_name}",
        salt.chars().count()
    )
}

/// The salt of cookies signed before the CVE-2026-6873 fix: name and salt
/// concatenated.
pub fn legacy_cookie_salt(cookie_name: &str, salt: &str) -> String {
    format!("{cookie_name}{salt}")
}

/// Configures a [`CookieSigner`].
#[derive(Debug)]
pub struct CookieSignerBuilder {
    keyring: Keyring,
    name: String,
    salt: String,
    legacy_fallback: bool,
    clock: Option<fn() -> SystemTime>,
}

impl CookieSignerBuilder {
    /// The `salt` argument of `set_signed_cookie` / `get_signed_cookie`
    /// (default empty).
    pub fn salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Whether values that fail with the v2 salt are tried with the legacy
    /// salt (Django's `SIGNED_COOKIE_LEGACY_SALT_FALLBACK`, default true).
    pub fn legacy_salt_fallback(mut self, enabled: bool) -> Self {
        self.legacy_fallback = enabled;
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    pub fn clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the signer, deriving keys for both salts once.
    pub fn build(self) -> CookieSigner {
        let signer = |salt: String| {
            let mut options = Options::new(TIMESTAMP_SIGNER_SALT);
            options.salt = salt;
            options.key_prefix = COOKIE_KEY_PREFIX;
            options.clock = self.clock;
            TimestampSigner::from_options(self.keyring.clone(), options)
                .expect("the default separator is safe")
        };
        CookieSigner {
            current: signer(cookie_salt(&self.name, &self.salt)),
            legacy: self
                .legacy_fallback
                .then(|| signer(legacy_cookie_salt(&self.name, &self.salt))),
            name: self.name,
        }
    }
}

/// Signs and reads the value of one signed cookie as Django does
/// (`response.set_signed_cookie(name, value, salt=...)` and
/// `request.get_signed_cookie(name, salt=..., max_age=...)`).
///
/// The value here is the cookie's value as Python's `http.cookies` holds it;
/// values with characters outside Django's legal cookie set (spaces, non-ASCII)
/// travel quoted in the `Cookie` header.
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_django::CookieSigner;
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let theme = CookieSigner::builder(keyring, "theme").salt("ui").build();
/// let cookie = theme.sign("dark").unwrap();
/// let read = theme.verify(&cookie, None).unwrap();
/// assert_eq!(read.value, "dark");
/// assert!(!read.needs_resign());
/// ```
#[derive(Debug)]
pub struct CookieSigner {
    name: String,
    current: TimestampSigner,
    legacy: Option<TimestampSigner>,
}

impl CookieSigner {
    /// A signer for cookie `cookie_name` with an empty salt.
    pub fn new(keyring: Keyring, cookie_name: impl Into<String>) -> Self {
        Self::builder(keyring, cookie_name).build()
    }

    /// Configures a signer for cookie `cookie_name`.
    pub fn builder(keyring: Keyring, cookie_name: impl Into<String>) -> CookieSignerBuilder {
        CookieSignerBuilder {
            keyring,
            name: cookie_name.into(),
            salt: String::new(),
            legacy_fallback: true,
            clock: None,
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value to set, as `set_signed_cookie` computes it.
    ///
    /// # Errors
    /// As [`Signer::sign`](crate::Signer::sign).
    pub fn sign(&self, value: &str) -> Result<String, keyroll_core::Closed> {
        self.current.sign(value)
    }

    /// Verifies a cookie value as `get_signed_cookie` does: v2 salt first,
    /// then (unless the value merely expired) the legacy salt.
    pub fn verify<'t>(
        &self,
        cookie_value: &'t str,
        max_age: Option<Duration>,
    ) -> Result<VerifiedCookie<'t>, Error> {
        self.check(cookie_value, max_age).inspect_err(Error::count)
    }

    /// [`verify`](Self::verify) without counting a refusal: a cookie that
    /// only the legacy salt verifies is not refused, so counting waits for
    /// the outcome of both tries.
    fn check<'t>(
        &self,
        cookie_value: &'t str,
        max_age: Option<Duration>,
    ) -> Result<VerifiedCookie<'t>, Error> {
        let (verified, legacy_salt) = match self.current.check(cookie_value, max_age) {
            Ok(verified) => (verified, false),
            Err(error) if error.is_bad_signature() && !error.is_expired() => match &self.legacy {
                Some(legacy) => (legacy.check(cookie_value, max_age)?, true),
                None => return Err(error),
            },
            Err(error) => return Err(error),
        };
        let Verified {
            value,
            key,
            timestamp,
        } = verified;
        Ok(VerifiedCookie {
            value,
            key,
            timestamp,
            legacy_salt,
        })
    }
}

/// A verified signed-cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedCookie<'t> {
    /// The value that was signed.
    pub value: &'t str,
    /// The key that verified it.
    pub key: VerifiedBy,
    /// When it was signed.
    pub timestamp: Option<SystemTime>,
    /// True when it verified only with the pre-CVE-2026-6873 salt.
    pub legacy_salt: bool,
}

impl VerifiedCookie<'_> {
    /// True when the cookie should be set again: a non-current key or the
    /// legacy salt verified it.
    pub fn needs_resign(&self) -> bool {
        self.key.role != Role::Current || self.legacy_salt
    }
}
