//! Django's hash algorithms; the HMAC states are keyroll-core's
//! ([`KeyedHmac`]).

use std::fmt;
use std::str::FromStr;

use keyroll_core::kit::{HmacAlgorithm, KeyedHmac};

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
    /// The hashlib name Django uses (`"sha256"`): the HMAC's.
    pub fn name(self) -> &'static str {
        HmacAlgorithm::from(self).name()
    }

    /// Length of a raw signature in bytes.
    pub fn digest_len(self) -> usize {
        HmacAlgorithm::from(self).mac_len()
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

impl From<Algorithm> for HmacAlgorithm {
    fn from(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha1 => Self::Sha1,
            Algorithm::Sha256 => Self::Sha256,
            Algorithm::Sha512 => Self::Sha512,
        }
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

/// The pre-keyed HMAC state every format shares; this crate's former own copy.
#[deprecated(
    note = "use keyroll_core::kit::KeyedHmac (the same type: `KeyedMac::new(Algorithm::Sha1, key)` still works)"
)]
pub type KeyedMac = KeyedHmac;
