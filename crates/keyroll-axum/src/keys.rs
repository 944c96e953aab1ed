//! The shared configuration behind every cookie extractor: the keyring, the
//! per-cookie-name signers, the Fernet encrypter, the Django session codec,
//! the cookie template and the re-issue hook.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use keyroll_core::{Closed, Keyring, Role, Signer, Verified, VerifiedBy};
use keyroll_django::SignedCookieSessions;
use keyroll_fernet::{Derive, Encrypter, KeyError};
use tower_cookies::Cookie;
use tower_cookies::cookie::SameSite;

/// Which kind of cookie a [`Reissue`] concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CookieKind {
    /// A signed cookie ([`SignedCookies`](crate::SignedCookies)).
    Signed,
    /// A private (encrypted) cookie ([`PrivateCookies`](crate::PrivateCookies)).
    Private,
    /// A Django `signed_cookies` session cookie ([`DjangoSession`](crate::DjangoSession)).
    DjangoSession,
}

impl CookieKind {
    /// Its name (`signed`, `private`, `django-session`), as logs and
    /// metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signed => "signed",
            Self::Private => "private",
            Self::DjangoSession => "django-session",
        }
    }
}

impl fmt::Display for CookieKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A cookie that verified with a superseded key and was set again, signed
/// (or encrypted) with the current key, in the same response. Passed to the
/// [`on_reissue`](CookieKeysBuilder::on_reissue) hook; holds ids, never
/// cookie values or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reissue {
    /// The cookie's name.
    pub name: String,
    /// Signed, private or Django session.
    pub kind: CookieKind,
    /// The key that verified the incoming cookie, and its role then.
    pub verified_by: VerifiedBy,
    /// The id of the key that signed the re-issued cookie.
    pub signed_by: Arc<str>,
}

type Hook = Arc<dyn Fn(&Reissue) + Send + Sync>;

/// Why [`CookieKeysBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A key of the keyring cannot be turned into a Fernet key for private
    /// cookies (only possible with a custom derivation; HKDF accepts any key).
    #[error("cannot derive the private-cookie encryption keys: {0}")]
    Encryption(#[from] KeyError),
}

/// Cookie keys backed by a live [`Keyring`]: put one in your router state
/// (or make it reachable with `FromRef`) and use the
/// [`SignedCookies`](crate::SignedCookies), [`PrivateCookies`](crate::PrivateCookies)
/// and [`DjangoSession`](crate::DjangoSession) extractors under a
/// [`CookieManagerLayer`](tower_cookies::CookieManagerLayer).
///
/// Cheap to clone (one `Arc`). Every key derived from the key set (the
/// per-cookie-name MAC keys, the Fernet keys, Django's salted keys) is
/// derived once per keyring generation, never per request.
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_axum::CookieKeys;
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let keys = CookieKeys::builder(keyring)
///     .salt("my-app")
///     .on_reissue(|r| println!("re-issued {} ({}), was verified by {}", r.name, r.kind, r.verified_by.id))
///     .build()
///     .unwrap();
/// let token = keys.sign("session", "user=42").unwrap();
/// assert_eq!(keys.verify("session", &token).unwrap().value, "user=42");
/// assert!(keys.verify("theme", &token).is_none(), "the cookie name is bound into the MAC");
/// ```
#[derive(Clone)]
pub struct CookieKeys {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) keyring: Keyring,
    pub(crate) salt: String,
    pub(crate) max_age: Option<Duration>,
    pub(crate) template: Cookie<'static>,
    pub(crate) hook: Option<Hook>,
    signers: RwLock<HashMap<String, Arc<Signer>>>,
    pub(crate) encrypter: Encrypter,
    pub(crate) django: SignedCookieSessions,
    pub(crate) django_cookie_name: String,
}

/// Settings of [`CookieKeys`], from [`CookieKeys::builder`].
pub struct CookieKeysBuilder {
    keyring: Keyring,
    salt: String,
    max_age: Option<Duration>,
    template: Cookie<'static>,
    hook: Option<Hook>,
    django_cookie_name: String,
    django_max_age: Duration,
}

impl fmt::Debug for CookieKeysBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKeysBuilder")
            .field("salt", &self.salt)
            .field("max_age", &self.max_age)
            .field("hook", &self.hook.is_some())
            .field("django_cookie_name", &self.django_cookie_name)
            .finish_non_exhaustive()
    }
}

impl CookieKeysBuilder {
    /// A namespace for this application's cookies (default empty): a cookie
    /// signed under one salt never verifies under another, even with the same
    /// name and keys.
    pub fn salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Refuses signed and private cookies issued longer than `max_age` ago
    /// (the issue time survives re-issues, so rotation never extends a
    /// session), and sets `Max-Age` on the cookies it writes.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The attributes of every cookie written, including re-issues (its name
    /// and value are ignored). Default: `Path=/; HttpOnly; SameSite=Lax; Secure`.
    ///
    /// ```
    /// use tower_cookies::Cookie;
    /// # use keyroll_core::{KeyMaterial, KeySet, Keyring};
    /// # let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
    /// // Plain-HTTP development server: no `Secure`.
    /// let keys = keyroll_axum::CookieKeys::builder(keyring)
    ///     .template(Cookie::build(("", "")).path("/").http_only(true).secure(false).build())
    ///     .build()
    ///     .unwrap();
    /// # drop(keys);
    /// ```
    pub fn template(mut self, template: Cookie<'static>) -> Self {
        self.template = template;
        self
    }

    /// Calls `hook` every time a cookie verified by a superseded key is
    /// re-issued with the current key.
    pub fn on_reissue(mut self, hook: impl Fn(&Reissue) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// The name of the Django session cookie (Django's `SESSION_COOKIE_NAME`,
    /// default `sessionid`).
    pub fn django_session_cookie(mut self, name: impl Into<String>) -> Self {
        self.django_cookie_name = name.into();
        self
    }

    /// How old a Django session cookie may be (Django's
    /// `SESSION_COOKIE_AGE`, default two weeks).
    pub fn django_session_age(mut self, age: Duration) -> Self {
        self.django_max_age = age;
        self
    }

    /// Builds the keys; derives the private-cookie encryption keys once to
    /// check every key of the current set is usable.
    pub fn build(self) -> Result<CookieKeys, BuildError> {
        let mut template = self.template;
        if let Some(max_age) = self.max_age
            && template.max_age().is_none()
        {
            let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            template.set_max_age(tower_cookies::cookie::time::Duration::seconds(seconds));
        }
        let encrypter = Encrypter::new(self.keyring.clone(), Derive::Hkdf)?;
        let django = SignedCookieSessions::new(self.keyring.clone()).with_max_age(self.django_max_age);
        Ok(CookieKeys {
            inner: Arc::new(Inner {
                keyring: self.keyring,
                salt: self.salt,
                max_age: self.max_age,
                template,
                hook: self.hook,
                signers: RwLock::new(HashMap::new()),
                encrypter,
                django,
                django_cookie_name: self.django_cookie_name,
            }),
        })
    }
}

impl CookieKeys {
    /// Settings for cookie keys read from `keyring`.
    pub fn builder(keyring: Keyring) -> CookieKeysBuilder {
        CookieKeysBuilder {
            keyring,
            salt: String::new(),
            max_age: None,
            template: Cookie::build(("", ""))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(true)
                .build(),
            hook: None,
            django_cookie_name: "sessionid".to_owned(),
            django_max_age: keyroll_django::session::SESSION_COOKIE_AGE,
        }
    }

    /// The keyring the keys come from.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The name of the Django session cookie.
    pub fn django_session_cookie_name(&self) -> &str {
        &self.inner.django_cookie_name
    }

    /// The signed-cookie value for cookie `name` holding `value`, issued now:
    /// what [`SignedCookies::add`](crate::SignedCookies::add) sets.
    ///
    /// # Errors
    /// [`Closed`] once the keyring has failed closed or its signing key is
    /// past its expiry: nothing signs then.
    pub fn sign(&self, name: &str, value: &str) -> Result<String, Closed> {
        self.sign_issued(name, value.as_bytes(), unix_seconds(SystemTime::now()))
    }

    /// Verifies the value of signed cookie `name`. `None` when it is not a
    /// valid cookie of that name (tampered, signed for another name or salt,
    /// with a key no longer accepted, or older than the maximum age); the
    /// reason is logged at debug level. The timestamp is the first issue time.
    pub fn verify(&self, name: &str, cookie_value: &str) -> Option<Verified<String>> {
        self.verify_signed(name, cookie_value)
            .map(|(verified, _)| verified)
    }

    /// The private-cookie value for cookie `name` holding `value`: a Fernet
    /// token (keys derived with HKDF, so any key material works) over the
    /// name-bound plaintext.
    ///
    /// # Errors
    /// As [`sign`](Self::sign).
    pub fn encrypt(&self, name: &str, value: &str) -> Result<String, Closed> {
        let mut plaintext = context("private", &self.inner.salt, name).into_bytes();
        plaintext.extend_from_slice(value.as_bytes());
        self.inner
            .encrypter
            .encrypt(plaintext)
            .map_err(|error| match error {
                KeyError::Closed(closed) => closed,
                // Every key was checked usable under HKDF, which accepts any key:
                // a key the encrypter refuses is one nothing may use.
                _ => Closed::FailedClosed,
            })
    }

    /// Decrypts the value of private cookie `name`; `None` as for [`verify`](Self::verify).
    pub fn decrypt(&self, name: &str, cookie_value: &str) -> Option<Verified<String>> {
        let decrypted = match self.inner.encrypter.decrypt(cookie_value, self.inner.max_age) {
            Ok(decrypted) => decrypted,
            Err(error) => {
                tracing::debug!(cookie = name, %error, "private cookie refused");
                return None;
            }
        };
        let prefix = context("private", &self.inner.salt, name);
        let Some(value) = decrypted.value.strip_prefix(prefix.as_bytes()) else {
            tracing::debug!(
                cookie = name,
                "private cookie refused: made for another cookie name or salt"
            );
            return None;
        };
        let Ok(value) = String::from_utf8(value.to_vec()) else {
            tracing::debug!(cookie = name, "private cookie refused: value is not UTF-8");
            return None;
        };
        Some(Verified {
            value,
            key: decrypted.key,
            timestamp: decrypted.timestamp,
        })
    }

    /// The signer of cookie `name`: one per name, created on first use (names
    /// come from application code, never from requests) and kept.
    fn signer(&self, name: &str) -> Arc<Signer> {
        let signers = &self.inner.signers;
        if let Some(signer) = signers.read().unwrap_or_else(PoisonError::into_inner).get(name) {
            return Arc::clone(signer);
        }
        let mut signers = signers.write().unwrap_or_else(PoisonError::into_inner);
        let signer = signers.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Signer::new(self.inner.keyring.clone()).with_salt(context(
                "signed",
                &self.inner.salt,
                name,
            )))
        });
        Arc::clone(signer)
    }

    pub(crate) fn sign_issued(&self, name: &str, value: &[u8], issued: u64) -> Result<String, Closed> {
        let mut payload = Vec::with_capacity(8 + value.len());
        payload.extend_from_slice(&issued.to_be_bytes());
        payload.extend_from_slice(value);
        self.signer(name).sign_bytes(&payload)
    }

    /// Verifies, and returns the issue time in seconds too for re-issues.
    pub(crate) fn verify_signed(&self, name: &str, cookie_value: &str) -> Option<(Verified<String>, u64)> {
        let verified = match self.signer(name).verify_bytes(cookie_value) {
            Ok(verified) => verified,
            Err(error) => {
                tracing::debug!(cookie = name, %error, "signed cookie refused");
                return None;
            }
        };
        let Some((issued, value)) = verified.value.split_first_chunk::<8>() else {
            tracing::debug!(cookie = name, "signed cookie refused: no issue time");
            return None;
        };
        let issued = u64::from_be_bytes(*issued);
        let issued_at = SystemTime::UNIX_EPOCH + Duration::from_secs(issued);
        if let Some(max_age) = self.inner.max_age {
            let now = SystemTime::now();
            match now.duration_since(issued_at) {
                Ok(age) if age > max_age => {
                    tracing::debug!(cookie = name, ?age, ?max_age, "signed cookie refused: expired");
                    return None;
                }
                Err(ahead) if ahead.duration() > keyroll_core::kit::MAX_CLOCK_SKEW => {
                    tracing::debug!(cookie = name, "signed cookie refused: issued in the future");
                    return None;
                }
                _ => {}
            }
        }
        let Ok(value) = String::from_utf8(value.to_vec()) else {
            tracing::debug!(cookie = name, "signed cookie refused: value is not UTF-8");
            return None;
        };
        Some((
            Verified {
                value,
                key: verified.key,
                timestamp: Some(issued_at),
            },
            issued,
        ))
    }

    /// A cookie named `name` holding `value`, with the template's attributes.
    pub(crate) fn cookie(&self, name: &str, value: String) -> Cookie<'static> {
        let mut cookie = self.inner.template.clone();
        cookie.set_name(name.to_owned());
        cookie.set_value(value);
        cookie
    }

    /// Tells the hook (and the log) about a re-issue.
    pub(crate) fn report(&self, name: &str, kind: CookieKind, verified_by: VerifiedBy) {
        keyroll_core::record_reissue(kind.name());
        let signed_by = self
            .inner
            .keyring
            .load()
            .signing_key_at(SystemTime::now())
            .shared_id();
        tracing::info!(
            cookie = name,
            %kind,
            verified_by = %verified_by.id,
            role = %verified_by.role,
            signed_by = %signed_by,
            "cookie re-issued with the current key"
        );
        if let Some(hook) = &self.inner.hook {
            hook(&Reissue {
                name: name.to_owned(),
                kind,
                verified_by,
                signed_by,
            });
        }
    }
}

impl fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKeys")
            .field("salt", &self.inner.salt)
            .field("max_age", &self.inner.max_age)
            .field("generation", &self.inner.keyring.generation())
            .field("django_session_cookie", &self.inner.django_cookie_name)
            .finish_non_exhaustive()
    }
}

/// True when a cookie verified by this key should be set again with the
/// current key: the key was superseded. A pending key is newer than the
/// current one, so re-signing with the current key would be a step back.
pub(crate) fn should_reissue(key: &VerifiedBy) -> bool {
    key.role == Role::Fallback
}

/// The domain-separation string binding a cookie's kind, the application
/// salt and the cookie name: every variable field is preceded by its length
/// in bytes, so no two `(salt, name)` pairs share an encoding (unlike plain
/// concatenation, cf. CVE-2026-6873).
///
/// ```text
/// keyroll.axum.<kind>.v1:<len(salt)>:<salt>:<len(name)>:<name>\0
/// ```
pub(crate) fn context(kind: &str, salt: &str, name: &str) -> String {
    format!(
        "keyroll.axum.{kind}.v1:{}:{salt}:{}:{name}\0",
        salt.len(),
        name.len()
    )
}

pub(crate) fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_length_prefixed_so_salt_and_name_cannot_trade_bytes() {
        assert_ne!(context("signed", "ab", "c"), context("signed", "a", "bc"));
        assert_ne!(context("signed", "", "a:1:b"), context("signed", "a", "b"));
        assert_eq!(
            context("signed", "app", "session"),
            "keyroll.axum.signed.v1:3:app:7:session\0"
        );
    }
}
