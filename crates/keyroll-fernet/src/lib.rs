//! Encryption at rest with rotating keys: Fernet tokens, byte-compatible with
//! Python `cryptography`'s `Fernet`/`MultiFernet`, over a live keyroll key set.
//!
//! - Tokens follow the Fernet spec exactly: `0x80`, a 64-bit big-endian
//!   timestamp, a random IV, AES-128-CBC with PKCS#7, HMAC-SHA256, url-safe
//!   base64 with padding (RustCrypto `aes`, `cbc`, `hmac`).
//! - Keys come from any provider, either as Fernet keys ([`Derive::Raw`]) or
//!   as arbitrary secrets stretched with HKDF-SHA256 the way
//!   django-fernet-fields does ([`Derive::Hkdf`]).
//! - [`Encrypter`] has `MultiFernet` semantics over the [`Keyring`](keyroll_core::Keyring):
//!   encrypt with the signing key, decrypt with any verifying key and report
//!   which, optional TTL with the 60 s clock-skew rule,
//!   [`rotate`](Encrypter::rotate) keeping the original timestamp, and
//!   [`reencrypt`](Encrypter::reencrypt) for whole files of tokens.
//!
//! ```
//! use keyroll_core::{KeyEntry, KeySet, Keyring};
//! use keyroll_fernet::{Derive, Encrypter};
//! use std::time::SystemTime;
//!
//! let old = keyroll_fernet::generate_key();
//! let keyring = Keyring::new(KeySet::single("v1", old.clone()).unwrap());
//! let encrypter = Encrypter::new(keyring.clone(), Derive::Raw).unwrap();
//! let stored = encrypter.encrypt("smtp-password").unwrap();
//!
//! // The key rotates: v2 signs, v1 still decrypts.
//! let now = SystemTime::now();
//! keyring.install(KeySet::new(vec![
//!     KeyEntry::new("v2", keyroll_fernet::generate_key(), Some(now), None, None),
//!     KeyEntry::new("v1", old, Some(SystemTime::UNIX_EPOCH), Some(now), None),
//! ], now).unwrap());
//!
//! let read = encrypter.decrypt(&stored, None).unwrap();
//! assert_eq!(&*read.key.id, "v1");
//! assert!(read.needs_resign());
//! let rotated = encrypter.rotate(&stored).unwrap();
//! assert_eq!(&*encrypter.decrypt(&rotated, None).unwrap().key.id, "v2");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod encrypter;
mod key;
mod reencrypt;
mod token;

#[allow(deprecated)]
pub use encrypter::Decrypted;
pub use encrypter::{DecryptError, Encrypter, MAX_CLOCK_SKEW};
pub use key::{
    Derive, FernetKey, HKDF_INFO, HKDF_SALT, KeyError, UnknownDerive, generate_key, hkdf_fernet_key,
};
pub use keyroll_core::{Verified, VerifiedBy};
pub use reencrypt::{ReencryptCounts, ReencryptError};
