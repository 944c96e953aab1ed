//! Flask's default session cookie, signed and read with a rotating keyroll
//! [`Keyring`](keyroll_core::Keyring): itsdangerous' `URLSafeTimedSerializer`
//! with salt `cookie-session`, `hmac` key derivation and SHA-1, Flask's
//! tagged JSON ([`Value`]), zlib compression with a bound on the inflated
//! size, byte-identical to Flask 3.1.
//!
//! The keyring's current key is Flask's `SECRET_KEY`; the keys that verify
//! are the current key, pending keys, then fallbacks newest first: what
//! Flask ≥ 3.1.1 does with `SECRET_KEY_FALLBACKS` listed oldest first. The
//! result says which key verified ([`Verified::needs_resign`](keyroll_core::Verified::needs_resign)):
//! re-issue the cookie then. The per-key HMAC states
//! ([`keyroll_core::kit::KeyedHmac`]) are derived once per key-set
//! generation, never per call; the encoding pieces are keyroll-django's
//! ([`keyroll_django::codec`]).
//!
//! ```
//! use keyroll_core::{KeyMaterial, KeySet, Keyring};
//! use keyroll_flask::{SecureCookieSessions, Value};
//!
//! let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
//! let sessions = SecureCookieSessions::new(keyring);
//! let cookie = sessions.save(&Value::dict([("cart", Value::Tuple(vec![Value::from(7)]))])).unwrap();
//! let session = sessions.load(&cookie).unwrap();
//! assert_eq!(session.value.to_tagged_json().unwrap(), r#"{"cart":{" t":[7]}}"#);
//! ```

#![forbid(unsafe_code)]

mod error;
mod session;
mod tagged;

pub use error::Error;
pub use keyroll_core::kit::Unserved;
pub use keyroll_core::{Verified, VerifiedBy};
pub use keyroll_django::codec::PayloadError;
pub use session::{
    PERMANENT_SESSION_LIFETIME, SESSION_SALT, SecureCookieSessions, SecureCookieSessionsBuilder,
};
pub use tagged::Value;

/// The examples of docs/FLASK.md compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/FLASK.md")]
struct GuideDoctests;
