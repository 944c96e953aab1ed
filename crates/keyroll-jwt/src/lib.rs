//! JSON Web Tokens (RFC 7519, JWS compact form, HS256/HS384/HS512) signed
//! and verified with a rotating keyroll [`Keyring`](keyroll_core::Keyring).
//!
//! The keyring's current key signs, and the header's `kid` is that key's
//! id: a verify looks the key up by `kid` and computes one HMAC whatever the
//! number of old keys. Tokens without `kid` (from issuers that do not write
//! it) are tried with every accepted key, current first, or refused
//! ([`WithoutKid`]). The result says which key verified and whether to issue
//! a new token ([`Verified::needs_resign`](keyroll_core::Verified::needs_resign)).
//!
//! Checked on every verify: the length bound, `alg` (never `none`, never an
//! asymmetric algorithm against these HMAC keys, only the accepted HMAC
//! ones), `crit` (refused: no extension is implemented), the MAC (constant
//! time), then `exp`, `nbf`, `iat` with a leeway, `iss` and `aud`. The
//! per-key HMAC states and encoded headers are derived once per key-set
//! generation ([`keyroll_core::DerivedCache`]), never per call.
//!
//! ## Why not the `jsonwebtoken` crate
//! `jsonwebtoken` decodes with a `DecodingKey` holding one secret: it keys
//! the HMAC again on every call, and choosing the key by `kid` means parsing
//! the header twice (`decode_header`, then `decode`). The JOSE subset here
//! (three base64url parts, a header with `alg`/`kid`/`crit`, the registered
//! claims) is small, and doing it over pre-keyed states is faster on the hot
//! path: `benches/jwt_verify.rs` measures both on the same token, and the
//! interop tests check both ways against `jsonwebtoken` and PyJWT.
//!
//! ```
//! use std::time::Duration;
//! use keyroll_core::{KeyMaterial, KeySet, Keyring};
//! use serde_json::{Value, json};
//!
//! let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
//! let signer = keyroll_jwt::Signer::new(keyring);
//! let token = signer.sign_with_ttl(&json!({"sub": "42"}), Duration::from_secs(60)).unwrap();
//! let claims = signer.verify::<Value>(&token).unwrap();
//! assert_eq!(claims.value["sub"], "42");
//! assert_eq!(&*claims.key.id, "v1");
//! ```

#![forbid(unsafe_code)]

mod algorithm;
mod claims;
mod error;
mod signer;

pub use algorithm::Algorithm;
pub use error::{ConfigError, Error};
pub use keyroll_core::{Verified, VerifiedBy};
pub use signer::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, Signer, SignerBuilder, WithoutKid};

/// The examples of docs/JWT.md compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/JWT.md")]
struct GuideDoctests;
