//! The HMAC algorithms of RFC 7518 §3.2 and their pre-keyed states.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use crate::ConfigError;

/// A JWS `alg` this crate signs and verifies: HMAC with SHA-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA256, the default.
    #[default]
    Hs256,
    /// HMAC-SHA384.
    Hs384,
    /// HMAC-SHA512.
    Hs512,
}

impl Algorithm {
    /// The `alg` header value (`"HS256"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    /// Length of the MAC in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Self::Hs256 => 32,
            Self::Hs384 => 48,
            Self::Hs512 => 64,
        }
    }

    pub(crate) fn from_header(alg: &str) -> Option<Self> {
        match alg {
            "HS256" => Some(Self::Hs256),
            "HS384" => Some(Self::Hs384),
            "HS512" => Some(Self::Hs512),
            _ => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = ConfigError;

    /// `HS256`, `HS384` or `HS512` (any case).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_header(&name.to_ascii_uppercase()).ok_or_else(|| ConfigError::Algorithm(name.to_owned()))
    }
}

/// HMAC keyed once with a key's material, cloned for each token.
#[derive(Clone)]
pub(crate) enum KeyedHmac {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl KeyedHmac {
    /// JWS keys the HMAC with the secret as it is (RFC 7518 §3.2).
    pub(crate) fn new(algorithm: Algorithm, key: &[u8]) -> Self {
        const ANY_LENGTH: &str = "HMAC accepts keys of any length";
        match algorithm {
            Algorithm::Hs256 => Self::Hs256(Mac::new_from_slice(key).expect(ANY_LENGTH)),
            Algorithm::Hs384 => Self::Hs384(Mac::new_from_slice(key).expect(ANY_LENGTH)),
            Algorithm::Hs512 => Self::Hs512(Mac::new_from_slice(key).expect(ANY_LENGTH)),
        }
    }

    /// The MAC of `message`, written to the front of `out`; returns its length.
    pub(crate) fn mac_into(&self, message: &[u8], out: &mut [u8; 64]) -> usize {
        fn finish<M: Mac + Clone>(mac: &M, message: &[u8], out: &mut [u8]) -> usize {
            let tag = mac.clone().chain_update(message).finalize().into_bytes();
            out[..tag.len()].copy_from_slice(&tag);
            tag.len()
        }
        match self {
            Self::Hs256(mac) => finish(mac, message, out),
            Self::Hs384(mac) => finish(mac, message, out),
            Self::Hs512(mac) => finish(mac, message, out),
        }
    }

    /// True when `signature` is the MAC of `message`, compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let mut expected = [0u8; 64];
        let length = self.mac_into(message, &mut expected);
        constant_time_eq::constant_time_eq(&expected[..length], signature)
    }
}

impl fmt::Debug for KeyedHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self {
            Self::Hs256(_) => Algorithm::Hs256,
            Self::Hs384(_) => Algorithm::Hs384,
            Self::Hs512(_) => Algorithm::Hs512,
        };
        write!(f, "KeyedHmac({algorithm}, redacted)")
    }
}
