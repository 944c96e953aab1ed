//! Hash algorithms and the pre-keyed HMAC states derived from each key.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::sha256_hmac::{PaddedMessage, PrecomputedHmac};

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

const ANY_LENGTH: &str = "HMAC accepts keys of any length";

/// HMAC keyed with Django's derived key `H(key_salt + secret)`, computed once
/// per key and cloned for each message.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(PrecomputedHmac),
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

impl KeyedMac {
    /// `salted_hmac(key_salt, ·, secret)`: the HMAC key is
    /// `H(key_salt + secret)`, with both given as concatenated parts.
    pub(crate) fn derive(algorithm: Algorithm, parts: &[&[u8]]) -> Self {
        match algorithm {
            Algorithm::Sha1 => {
                Self::Sha1(<Hmac<_> as Mac>::new_from_slice(&derived_key::<Sha1>(parts)).expect(ANY_LENGTH))
            }
            Algorithm::Sha256 => Self::Sha256(PrecomputedHmac::new(&derived_key::<Sha256>(parts))),
            Algorithm::Sha512 => Self::Sha512(
                <Hmac<_> as Mac>::new_from_slice(&derived_key::<Sha512>(parts)).expect(ANY_LENGTH),
            ),
        }
    }

    /// Appends the base64url signature of `message` to `out`.
    pub(crate) fn sign_into(&self, message: &[u8], out: &mut String) {
        match self {
            Self::Sha1(mac) => {
                B64.encode_string(mac.clone().chain_update(message).finalize().into_bytes(), out)
            }
            Self::Sha256(mac) => B64.encode_string(mac.mac(&PaddedMessage::new(message)), out),
            Self::Sha512(mac) => {
                B64.encode_string(mac.clone().chain_update(message).finalize().into_bytes(), out)
            }
        }
    }

    /// True when `signature` (raw bytes) is the MAC of `message`, compared in
    /// constant time.
    pub(crate) fn verify(&self, message: &Message<'_>, signature: &[u8]) -> bool {
        match self {
            Self::Sha1(mac) => mac
                .clone()
                .chain_update(message.raw)
                .verify_slice(signature)
                .is_ok(),
            Self::Sha256(mac) => mac.verify(message.padded_for_sha256(), signature),
            Self::Sha512(mac) => mac
                .clone()
                .chain_update(message.raw)
                .verify_slice(signature)
                .is_ok(),
        }
    }
}

/// A message prepared once for checking against many keys.
pub(crate) struct Message<'m> {
    raw: &'m [u8],
    sha256: Option<PaddedMessage>,
}

impl<'m> Message<'m> {
    pub(crate) fn new(raw: &'m [u8], algorithm: Algorithm) -> Self {
        Self {
            raw,
            sha256: (algorithm == Algorithm::Sha256).then(|| PaddedMessage::new(raw)),
        }
    }

    fn padded_for_sha256(&self) -> &PaddedMessage {
        self.sha256
            .as_ref()
            .expect("prepared for the algorithm of the key")
    }
}

impl fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self {
            Self::Sha1(_) => Algorithm::Sha1,
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        };
        write!(f, "KeyedMac({algorithm}, redacted)")
    }
}
