//! Django wire compatibility for keyroll: `Signer`, `TimestampSigner`,
//! `dumps`/`loads`, signed cookies and the `signed_cookies` session backend,
//! byte-identical to Django 5.2, with keys from a rotating [`Keyring`].
//!
//! Django signs with `SECRET_KEY` and verifies with it and then
//! `SECRET_KEY_FALLBACKS`. Here the keyring's current key signs, and the
//! current key, then pending keys, then fallbacks (newest first) verify; the
//! result says which key matched ([`Verified::needs_resign`]). Keys derived per
//! salt are computed once per key-set generation with
//! [`keyroll_core::DerivedCache`], never per call.
//!
//! ```
//! use keyroll_core::{KeyMaterial, KeySet, Keyring};
//! use keyroll_django::{Signer, TimestampSigner, dumps, loads};
//!
//! let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
//! let signer = Signer::new(keyring.clone());
//! assert_eq!(signer.verify(&signer.sign("user:42").unwrap()).unwrap().value, "user:42");
//!
//! let token = dumps(&keyring, &serde_json::json!({"user": 42}), None, true).unwrap();
//! let value: serde_json::Value = loads(&keyring, &token, None, None).unwrap().value;
//! assert_eq!(value["user"], 42);
//! ```

#![forbid(unsafe_code)]

mod algorithm;
pub mod base62;
pub mod codec;
pub mod cookie;
mod error;
pub mod json;
pub mod session;
mod signer;

use std::time::Duration;

pub use algorithm::Algorithm;
#[allow(deprecated)]
pub use algorithm::KeyedMac;
pub use codec::PayloadError;
pub use cookie::{CookieSigner, CookieSignerBuilder, VerifiedCookie};
pub use error::{ConfigError, Error};
pub use keyroll_core::kit::Unserved;
pub use keyroll_core::{Verified, VerifiedBy};
pub use session::SignedCookieSessions;
pub use signer::{
    DEFAULT_MAX_DECOMPRESSED, DEFAULT_SEPARATOR, SIGNER_SALT, Signer, SignerBuilder, TIMESTAMP_SIGNER_SALT,
    TimestampSigner,
};

use keyroll_core::Keyring;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Default salt of Django's `signing.dumps` / `signing.loads`.
pub const DUMPS_SALT: &str = "django.core.signing";

impl TimestampSigner {
    /// The signer behind Django's `dumps`/`loads` (salt [`DUMPS_SALT`]): keep
    /// one per service and call [`sign_object`](TimestampSigner::sign_object) /
    /// [`verify_object`](TimestampSigner::verify_object).
    pub fn for_dumps(keyring: Keyring) -> Self {
        Self::builder(keyring)
            .salt(DUMPS_SALT)
            .build()
            .expect("the default separator is safe")
    }
}

/// Django's `signing.dumps(value, salt=salt, compress=compress)` in one call.
///
/// It derives the keys for this call only: services keep a
/// [`TimestampSigner::for_dumps`] instead. To sign JSON text with its key
/// order, pass [`json::JsonText`].
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_django::{dumps, json::JsonText};
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let token = dumps(&keyring, &JsonText(r#"{"b": 1, "a": 2}"#), Some("invites"), false).unwrap();
/// assert!(token.starts_with("eyJiIjoxLCJhIjoyfQ:"));
/// ```
pub fn dumps<T: Serialize + ?Sized>(
    keyring: &Keyring,
    value: &T,
    salt: Option<&str>,
    compress: bool,
) -> Result<String, Error> {
    object_signer(keyring, salt).sign_object(value, compress)
}

/// Django's `signing.loads(token, salt=salt, max_age=max_age)` in one call,
/// returning the key that verified (see [`dumps`] about keeping a signer).
pub fn loads<T: DeserializeOwned>(
    keyring: &Keyring,
    token: &str,
    salt: Option<&str>,
    max_age: Option<Duration>,
) -> Result<Verified<T>, Error> {
    object_signer(keyring, salt).verify_object(token, max_age)
}

fn object_signer(keyring: &Keyring, salt: Option<&str>) -> TimestampSigner {
    TimestampSigner::builder(keyring.clone())
        .salt(salt.unwrap_or(DUMPS_SALT))
        .build()
        .expect("the default separator is safe")
}
