//! Rotating signed and private cookies for axum and tower, backed by a live
//! keyroll [`Keyring`](keyroll_core::Keyring).
//!
//! The cookie jars of `cookie`, `axum-extra`, `tower-sessions` and
//! `actix-session` hold one key: rotating it logs every user out. Here:
//!
//! - [`SignedCookies`] verify with any accepted key (current, pending,
//!   fallbacks) and bind the cookie name and an application salt into the MAC
//!   (length-prefixed, so `(salt, name)` pairs cannot collide);
//! - [`PrivateCookies`] do the same with encryption (Fernet, keys derived
//!   with HKDF from whatever the store holds);
//! - [`DjangoSession`] reads and writes the session cookie of Django's
//!   `signed_cookies` backend, so a Django app and a Rust service share sessions;
//! - a cookie that verified with a superseded key is **re-issued on read**:
//!   set again, with the current key, in the same response, keeping its
//!   first issue time, and reported to an [`on_reissue`](CookieKeysBuilder::on_reissue) hook;
//! - a cookie that does not verify is simply absent (`get` returns `None`,
//!   `require` answers `401` with no detail);
//! - once the keyring has failed closed (or its key expired) nothing is
//!   signed: `add` returns [`CookieRejection::Closed`], a `503`;
//! - [`HealthLayer`] answers readiness probes from the
//!   [`Refresher`](keyroll_core::Refresher)'s status (200 healthy, 503 degraded).
//!
//! ```no_run
//! use axum::{Router, routing::{get, post}};
//! use keyroll_axum::{CookieKeys, CookieRejection, HealthLayer, SignedCookies};
//! use tower_cookies::CookieManagerLayer;
//!
//! async fn login(cookies: SignedCookies) -> Result<&'static str, CookieRejection> {
//!     cookies.add("session", "user=42")?;
//!     Ok("logged in\n")
//! }
//!
//! async fn me(cookies: SignedCookies) -> Result<String, CookieRejection> {
//!     Ok(cookies.require("session")?.value)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = keyroll_file::FileProvider::new("/etc/myapp/keys");
//! let refresher = keyroll_core::Refresher::builder(provider).start().await?;
//! let keys = CookieKeys::builder(refresher.keyring().clone()).salt("myapp").build()?;
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .route("/me", get(me))
//!     .layer(CookieManagerLayer::new())
//!     .layer(HealthLayer::new(refresher))
//!     .with_state(keys);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Wire format
//!
//! A signed cookie's value is a native keyroll token (`kr1.<kid>.<payload>.<mac>`,
//! see `docs/FORMAT.md`) made by a [`keyroll_core::Signer`] whose salt is
//! `keyroll.axum.signed.v1:<len(salt)>:<salt>:<len(name)>:<name>\0`; the payload is
//! the first issue time (8 bytes, big-endian Unix seconds) followed by the value.
//! A private cookie's value is a Fernet token whose plaintext is
//! `keyroll.axum.private.v1:<len(salt)>:<salt>:<len(name)>:<name>\0` followed by
//! the value.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The axum extractor and the constructor of a cookie type holding the
/// request's `cookies` (from the [`CookieManagerLayer`]) and the state's `keys`.
macro_rules! cookie_extractor {
    ($jar:ident, $new_doc:literal) => {
        impl<S> axum::extract::FromRequestParts<S> for $jar
        where
            S: Send + Sync,
            crate::CookieKeys: axum::extract::FromRef<S>,
        {
            type Rejection = crate::MissingCookieLayer;

            async fn from_request_parts(
                req: &mut axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let cookies = req
                    .extensions
                    .get::<tower_cookies::Cookies>()
                    .cloned()
                    .ok_or(crate::MissingCookieLayer)?;
                Ok(Self::new(cookies, axum::extract::FromRef::from_ref(state)))
            }
        }

        impl $jar {
            #[doc = $new_doc]
            pub fn new(cookies: tower_cookies::Cookies, keys: crate::CookieKeys) -> Self {
                Self { cookies, keys }
            }
        }
    };
}

mod django;
mod health;
mod keys;
mod rejection;
mod signed;

pub use django::DjangoSession;
pub use health::{HealthLayer, HealthService, Readiness};
pub use keys::{BuildError, CookieKeys, CookieKeysBuilder, CookieKind, Reissue};
pub use rejection::{CookieRejection, MissingCookieLayer};
pub use signed::{PrivateCookies, SignedCookies};

/// The axum this crate is built against, for applications (and the
/// `keyroll` facade's example) that want the same version.
pub use axum;
/// The cookie manager layer every cookie extractor needs around its routes.
pub use tower_cookies;
pub use tower_cookies::CookieManagerLayer;
