//! The HMAC algorithms of RFC 7518 §3.2; their pre-keyed states are
//! keyroll-core's ([`KeyedHmac`](keyroll_core::kit::KeyedHmac)).

use std::fmt;
use std::str::FromStr;

use keyroll_core::kit::HmacAlgorithm;

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
        HmacAlgorithm::from(self).mac_len()
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

impl From<Algorithm> for HmacAlgorithm {
    fn from(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Hs256 => Self::Sha256,
            Algorithm::Hs384 => Self::Sha384,
            Algorithm::Hs512 => Self::Sha512,
        }
    }
}
