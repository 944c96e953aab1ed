//! The signed and private cookie extractors.

use keyroll_core::Verified;
use tower_cookies::{Cookie, Cookies};

use crate::CookieRejection;
use crate::keys::{CookieKeys, CookieKind, should_reissue};

/// Signed cookies verified against every accepted key of a live keyring, and
/// re-issued with the current key when an old one verified.
///
/// The value is readable by the client (base64url) but cannot be changed,
/// moved to another cookie name or replayed past the maximum age. Extract it
/// in a handler of a router whose state gives a [`CookieKeys`] (`FromRef`)
/// under a [`CookieManagerLayer`](tower_cookies::CookieManagerLayer). Added,
/// removed and re-issued cookies are written as `Set-Cookie` by the layer,
/// whatever the handler returns.
///
/// ```
/// use axum::{Router, routing::get};
/// use keyroll_axum::{CookieKeys, CookieRejection, SignedCookies};
/// # use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// # let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
///
/// async fn me(cookies: SignedCookies) -> Result<String, CookieRejection> {
///     Ok(format!("you are {}", cookies.require("session")?.value))
/// }
///
/// let keys = CookieKeys::builder(keyring).build().unwrap();
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(tower_cookies::CookieManagerLayer::new())
///     .with_state(keys);
/// ```
#[derive(Debug, Clone)]
pub struct SignedCookies {
    cookies: Cookies,
    keys: CookieKeys,
}

cookie_extractor!(
    SignedCookies,
    "The signed cookies of `cookies` (for use outside an extractor)."
);

impl SignedCookies {
    /// The verified value of cookie `name`, or `None` when it is absent or
    /// does not verify. When a superseded key verified it, the cookie is set
    /// again in this response, signed with the current key and keeping its
    /// first issue time, and the re-issue hook is called.
    pub fn get(&self, name: &str) -> Option<Verified<String>> {
        self.require(name).ok()
    }

    /// Like [`get`](Self::get), with a [`CookieRejection`] (401) instead of `None`.
    pub fn require(&self, name: &str) -> Result<Verified<String>, CookieRejection> {
        let cookie = self.cookies.get(name).ok_or(CookieRejection::Missing)?;
        let (verified, issued) = self
            .keys
            .verify_signed(name, cookie.value())
            .ok_or(CookieRejection::Invalid)?;
        if should_reissue(&verified.key) {
            match self.keys.sign_issued(name, verified.value.as_bytes(), issued) {
                Ok(value) => {
                    self.cookies.add(self.keys.cookie(name, value));
                    self.keys.report(name, CookieKind::Signed, verified.key.clone());
                }
                Err(error) => tracing::warn!(cookie = name, %error, "signed cookie not re-issued"),
            }
        }
        Ok(verified)
    }

    /// Sets cookie `name` to `value`, signed with the current key, with the
    /// template's attributes.
    ///
    /// # Errors
    /// [`CookieRejection::Closed`] (a 503) once the keyring has failed closed
    /// or its signing key is past its expiry: nothing is set then.
    pub fn add(&self, name: &str, value: &str) -> Result<(), CookieRejection> {
        let value = self.keys.sign(name, value)?;
        self.cookies.add(self.keys.cookie(name, value));
        Ok(())
    }

    /// Sets `cookie` with its own attributes, its value signed for its name.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn add_cookie(&self, mut cookie: Cookie<'static>) -> Result<(), CookieRejection> {
        let value = self.keys.sign(cookie.name(), cookie.value())?;
        cookie.set_value(value);
        self.cookies.add(cookie);
        Ok(())
    }

    /// Removes cookie `name` (an expired `Set-Cookie` with the template's path
    /// and domain).
    pub fn remove(&self, name: &str) {
        self.cookies.remove(self.keys.cookie(name, String::new()));
    }
}

/// Private cookies: encrypted and authenticated (Fernet: AES-128-CBC +
/// HMAC-SHA256, keys derived from each key of the keyring with HKDF), bound
/// to their name, decrypted with any accepted key and re-issued with the
/// current key when an old one decrypted. The client can neither read nor
/// change the value.
///
/// Same setup as [`SignedCookies`].
#[derive(Debug, Clone)]
pub struct PrivateCookies {
    cookies: Cookies,
    keys: CookieKeys,
}

cookie_extractor!(
    PrivateCookies,
    "The private cookies of `cookies` (for use outside an extractor)."
);

impl PrivateCookies {
    /// The decrypted value of cookie `name`, or `None` when it is absent or
    /// does not decrypt. When a superseded key decrypted it, the cookie is
    /// set again in this response, encrypted with the current key and
    /// keeping its original timestamp, and the re-issue hook is called.
    pub fn get(&self, name: &str) -> Option<Verified<String>> {
        self.require(name).ok()
    }

    /// Like [`get`](Self::get), with a [`CookieRejection`] (401) instead of `None`.
    pub fn require(&self, name: &str) -> Result<Verified<String>, CookieRejection> {
        let cookie = self.cookies.get(name).ok_or(CookieRejection::Missing)?;
        let token = cookie.value().to_owned();
        drop(cookie);
        let verified = self.keys.decrypt(name, &token).ok_or(CookieRejection::Invalid)?;
        if should_reissue(&verified.key) {
            match self.keys.inner.encrypter.rotate(&token) {
                Ok(value) => {
                    self.cookies.add(self.keys.cookie(name, value));
                    self.keys.report(name, CookieKind::Private, verified.key.clone());
                }
                Err(error) => tracing::warn!(cookie = name, %error, "private cookie not re-issued"),
            }
        }
        Ok(verified)
    }

    /// Sets cookie `name` to `value`, encrypted with the current key, with
    /// the template's attributes.
    ///
    /// # Errors
    /// As [`SignedCookies::add`].
    pub fn add(&self, name: &str, value: &str) -> Result<(), CookieRejection> {
        let value = self.keys.encrypt(name, value)?;
        self.cookies.add(self.keys.cookie(name, value));
        Ok(())
    }

    /// Sets `cookie` with its own attributes, its value encrypted for its name.
    ///
    /// # Errors
    /// As [`SignedCookies::add`].
    pub fn add_cookie(&self, mut cookie: Cookie<'static>) -> Result<(), CookieRejection> {
        let value = self.keys.encrypt(cookie.name(), cookie.value())?;
        cookie.set_value(value);
        self.cookies.add(cookie);
        Ok(())
    }

    /// Removes cookie `name`.
    pub fn remove(&self, name: &str) {
        self.cookies.remove(self.keys.cookie(name, String::new()));
    }
}
