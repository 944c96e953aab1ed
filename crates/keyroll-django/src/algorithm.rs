//! Hash algorithms and the pre-keyed HMAC states derived from each key.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use keyroll_core::MacText;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::ConfigError;

/// The hash behind Django's `salted_hmac`: `sha256` is Django's default
/// since 3.1; `sha1` and `sha512` read values signed with
/// `Signer(algorithm=...)` or by old Django versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// SHA-1 (Django before 3.1; legacy reading only).
    Sha1,
    /// SHA-256, Django's default.
    #[default]
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The hashlib name Django uses (`"sha256"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Length of a raw signature in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// Length of a signature as it appears in a value (base64url, no padding).
    pub fn signature_len(self) -> usize {
        (self.digest_len() * 4).div_ceil(3)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            other => Err(ConfigError::InvalidAlgorithm(other.to_owned())),
        }
    }
}

/// A pre-keyed HMAC state: keyed once per key (the `hmac` crate absorbs the
/// padded key into its inner and outer states, RFC 2104 §4) and cloned for
/// each message. Django keys it with its derived key `H(key_salt + secret)`
/// (`derive`); itsdangerous (Flask) with
/// `HMAC(secret, salt)` ([`rekeyed`](KeyedMac::rekeyed)).
#[derive(Clone)]
pub enum KeyedMac {
    /// HMAC-SHA1.
    Sha1(Hmac<Sha1>),
    /// HMAC-SHA256.
    Sha256(Hmac<Sha256>),
    /// HMAC-SHA512.
    Sha512(Hmac<Sha512>),
}

/// `H(part₀ + part₁ + …)`: Django's derived key.
fn derived_key<H: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = H::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

fn keyed<M: Mac + KeyInit>(key: &[u8]) -> M {
    <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn encode_mac<M: Mac + Clone>(mac: &M, message: &[u8], out: &mut String) {
    B64.encode_string(mac.clone().chain_update(message).finalize().into_bytes(), out);
}

/// Constant time in the signature's content (one optimization barrier rather
/// than `subtle`'s one per byte, which matters when every key is tried).
fn verify_mac<M: Mac + Clone>(mac: &M, message: &[u8], signature: &[u8]) -> bool {
    constant_time_eq::constant_time_eq(
        &mac.clone().chain_update(message).finalize().into_bytes(),
        signature,
    )
}

impl KeyedMac {
    /// HMAC keyed with `key` as it is.
    pub fn new(algorithm: Algorithm, key: &[u8]) -> Self {
        match algorithm {
            Algorithm::Sha1 => Self::Sha1(keyed(key)),
            Algorithm::Sha256 => Self::Sha256(keyed(key)),
            Algorithm::Sha512 => Self::Sha512(keyed(key)),
        }
    }

    /// `salted_hmac(key_salt, ·, secret)`: the HMAC key is
    /// `H(key_salt + secret)`, with both given as concatenated parts.
    pub(crate) fn derive(algorithm: Algorithm, parts: &[&[u8]]) -> Self {
        let key = match algorithm {
            Algorithm::Sha1 => derived_key::<Sha1>(parts),
            Algorithm::Sha256 => derived_key::<Sha256>(parts),
            Algorithm::Sha512 => derived_key::<Sha512>(parts),
        };
        Self::new(algorithm, &key)
    }

    /// A MAC of the same algorithm keyed with this MAC of `message`:
    /// itsdangerous' `key_derivation="hmac"` (`HMAC(secret, salt)`). The
    /// derived key never leaves this call.
    pub fn rekeyed(&self, message: &[u8]) -> Self {
        match self {
            Self::Sha1(mac) => Self::Sha1(keyed(&mac.clone().chain_update(message).finalize().into_bytes())),
            Self::Sha256(mac) => {
                Self::Sha256(keyed(&mac.clone().chain_update(message).finalize().into_bytes()))
            }
            Self::Sha512(mac) => {
                Self::Sha512(keyed(&mac.clone().chain_update(message).finalize().into_bytes()))
            }
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha1(_) => Algorithm::Sha1,
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Appends the base64url signature of `message` to `out`.
    pub fn sign_into(&self, message: &[u8], out: &mut String) {
        match self {
            Self::Sha1(mac) => encode_mac(mac, message, out),
            Self::Sha256(mac) => encode_mac(mac, message, out),
            Self::Sha512(mac) => encode_mac(mac, message, out),
        }
    }

    /// True when this is an HMAC-SHA256 state and `signature` (the token's
    /// signature text, decoded) is its MAC of `message`, compared in
    /// constant time word by word.
    #[inline]
    pub(crate) fn verify_sha256(&self, message: &[u8], signature: &MacText) -> bool {
        match self {
            Self::Sha256(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                signature.matches(&mac.finalize().into_bytes().into())
            }
            _ => false,
        }
    }

    /// True when `signature` (raw bytes) is the MAC of `message`, compared in
    /// constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Sha1(mac) => verify_mac(mac, message, signature),
            Self::Sha256(mac) => verify_mac(mac, message, signature),
            Self::Sha512(mac) => verify_mac(mac, message, signature),
        }
    }
}

impl fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyedMac({}, redacted)", self.algorithm())
    }
}
