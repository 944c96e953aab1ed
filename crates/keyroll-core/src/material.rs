//! Secret key material: zeroized on drop, never printed.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The secret bytes of one key version.
///
/// The bytes are wiped from memory when the value is dropped, and neither
/// `Debug` nor any error of this crate ever shows them: `Debug` prints only the
/// length and the [fingerprint](KeyMaterial::fingerprint).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The secret bytes. The name makes every use visible in review.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The 8-byte key id carried by native tokens: the first bytes of a
    /// domain-separated SHA-256 of the material. It names the key without
    /// revealing it (keys are at least 32 bytes, see [`KeyStrength`](crate::KeyStrength)).
    pub fn key_id(&self) -> [u8; 8] {
        let digest = Sha256::new()
            .chain_update(b"keyroll/v1/kid\0")
            .chain_update(self.expose_secret())
            .finalize();
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        kid
    }

    /// A short, stable, non-secret name for this material: `k-` and the first
    /// 12 hex digits of its [key id](KeyMaterial::key_id). Providers that have
    /// no ids of their own (environment variables, plain key files) use it as
    /// the version id.
    pub fn fingerprint(&self) -> String {
        let mut out = String::with_capacity(14);
        out.push_str("k-");
        for byte in &self.key_id()[..6] {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

impl From<&str> for KeyMaterial {
    fn from(value: &str) -> Self {
        Self::new(value.as_bytes())
    }
}

impl From<String> for KeyMaterial {
    fn from(value: String) -> Self {
        Self::new(value.into_bytes())
    }
}

impl From<Vec<u8>> for KeyMaterial {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyMaterial({}, {} bytes, redacted)",
            self.fingerprint(),
            self.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_fingerprint_not_material() {
        let material = KeyMaterial::from("correct horse battery staple, and then some");
        let shown = format!("{material:?}");
        assert!(!shown.contains("horse"));
        assert!(shown.contains(&material.fingerprint()));
    }

    #[test]
    fn fingerprint_is_stable_and_distinguishes_keys() {
        let a = KeyMaterial::from("a".repeat(40));
        assert_eq!(a.fingerprint(), KeyMaterial::from("a".repeat(40)).fingerprint());
        assert_ne!(a.fingerprint(), KeyMaterial::from("b".repeat(40)).fingerprint());
        assert_eq!(a.fingerprint().len(), 14);
    }
}
