//! One keyed HMAC for every format: SHA-1 (legacy Django values, Flask's
//! itsdangerous), SHA-256, SHA-384 and SHA-512 (Django, JWT).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::digest::{Digest, KeyInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::MacText;

/// The hash of a [`KeyedHmac`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HmacAlgorithm {
    /// HMAC-SHA1: only to read legacy values (Django before 3.1, Flask).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA384.
    Sha384,
    /// HMAC-SHA512.
    Sha512,
}

impl HmacAlgorithm {
    /// Length of the MAC in bytes.
    #[inline]
    pub fn mac_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Its lowercase name (`sha256`), as hashlib and Django spell it.
    #[inline]
    pub fn name(self) -> &'static str {
        ["sha1", "sha256", "sha384", "sha512"][self as usize]
    }
}

impl fmt::Display for HmacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pre-keyed HMAC state: keyed once per key (the `hmac` crate absorbs the
/// padded key into its inner and outer states, RFC 2104 §4) and cloned for
/// each message.
///
/// Keys derived on the way ([`derived`](Self::derived),
/// [`rekeyed`](Self::rekeyed)) are zeroized once the state is keyed; the
/// state itself holds the hashed pads, not the key. `Debug` names the
/// algorithm only.
///
/// ```
/// use keyroll_core::kit::{HmacAlgorithm, KeyedHmac};
///
/// let mac = KeyedHmac::new(HmacAlgorithm::Sha256, b"key");
/// let mut out = [0u8; 64];
/// let len = mac.mac_into(b"The quick brown fox jumps over the lazy dog", &mut out);
/// assert_eq!(out[..4], [0xf7, 0xbc, 0x83, 0xf4]);
/// assert!(mac.verify(b"The quick brown fox jumps over the lazy dog", &out[..len]));
/// assert_eq!(format!("{mac:?}"), "KeyedHmac(sha256, redacted)");
/// ```
#[derive(Clone)]
pub struct KeyedHmac(State);

#[derive(Clone)]
enum State {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

fn keyed<M: Mac + KeyInit>(key: &[u8]) -> M {
    <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// `H(part₀ + part₁ + …)`, zeroized on drop.
fn hash_of<H: Digest>(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut hasher = H::new();
    for part in parts {
        hasher.update(part);
    }
    Zeroizing::new(hasher.finalize().to_vec())
}

/// The MAC of `message`, written to the front of `out`; its length.
#[inline]
fn finish<M: Mac + Clone>(mac: &M, message: &[u8], out: &mut [u8; 64]) -> usize {
    let tag = mac.clone().chain_update(message).finalize().into_bytes();
    out[..tag.len()].copy_from_slice(&tag);
    tag.len()
}

/// True when `signature` is the MAC of `message`: compared as the hash
/// returns it, without copying it to a buffer first.
fn matches<M: Mac + Clone>(mac: &M, message: &[u8], signature: &[u8]) -> bool {
    constant_time_eq::constant_time_eq(
        &mac.clone().chain_update(message).finalize().into_bytes(),
        signature,
    )
}

impl KeyedHmac {
    /// HMAC keyed with `key` as it is (JWS, RFC 7518 §3.2; itsdangerous).
    pub fn new(algorithm: impl Into<HmacAlgorithm>, key: &[u8]) -> Self {
        Self(match algorithm.into() {
            HmacAlgorithm::Sha1 => State::Sha1(keyed(key)),
            HmacAlgorithm::Sha256 => State::Sha256(keyed(key)),
            HmacAlgorithm::Sha384 => State::Sha384(keyed(key)),
            HmacAlgorithm::Sha512 => State::Sha512(keyed(key)),
        })
    }

    /// HMAC keyed with `H(part₀ + part₁ + …)`, `H` the algorithm's hash:
    /// Django's `salted_hmac` key. The derived key never leaves this call.
    pub fn derived(algorithm: impl Into<HmacAlgorithm>, parts: &[&[u8]]) -> Self {
        let algorithm = algorithm.into();
        let key = match algorithm {
            HmacAlgorithm::Sha1 => hash_of::<Sha1>(parts),
            HmacAlgorithm::Sha256 => hash_of::<Sha256>(parts),
            HmacAlgorithm::Sha384 => hash_of::<Sha384>(parts),
            HmacAlgorithm::Sha512 => hash_of::<Sha512>(parts),
        };
        Self::new(algorithm, &key)
    }

    /// A MAC of the same algorithm keyed with this MAC of `message`:
    /// itsdangerous' `key_derivation="hmac"` (`HMAC(secret, salt)`). The
    /// derived key never leaves this call.
    pub fn rekeyed(&self, message: &[u8]) -> Self {
        let mut key = Zeroizing::new([0u8; 64]);
        let len = self.mac_into(message, &mut key);
        Self::new(self.algorithm(), &key[..len])
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HmacAlgorithm {
        match self.0 {
            State::Sha1(_) => HmacAlgorithm::Sha1,
            State::Sha256(_) => HmacAlgorithm::Sha256,
            State::Sha384(_) => HmacAlgorithm::Sha384,
            State::Sha512(_) => HmacAlgorithm::Sha512,
        }
    }

    /// The MAC of `message`, written to the front of `out`; returns its length.
    #[inline]
    pub fn mac_into(&self, message: &[u8], out: &mut [u8; 64]) -> usize {
        match &self.0 {
            State::Sha1(mac) => finish(mac, message, out),
            State::Sha256(mac) => finish(mac, message, out),
            State::Sha384(mac) => finish(mac, message, out),
            State::Sha512(mac) => finish(mac, message, out),
        }
    }

    /// Appends the base64url (unpadded) MAC of `message` to `out`.
    pub fn sign_into(&self, message: &[u8], out: &mut String) {
        let mut tag = [0u8; 64];
        let len = self.mac_into(message, &mut tag);
        B64.encode_string(&tag[..len], out);
    }

    /// True when `signature` (raw bytes) is the MAC of `message`, compared
    /// in constant time (one optimization barrier rather than one per byte,
    /// which matters when every key is tried). Not `#[inline]`: inlined into
    /// a format's verify loop it measured 7-9% slower for Flask's
    /// HMAC-SHA1 (`keyroll-bench --micro`), as a call it costs nothing
    /// measurable for JWT.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.0 {
            State::Sha1(mac) => matches(mac, message, signature),
            State::Sha256(mac) => matches(mac, message, signature),
            State::Sha384(mac) => matches(mac, message, signature),
            State::Sha512(mac) => matches(mac, message, signature),
        }
    }

    /// True when this is an HMAC-SHA256 state and `signature` (a token's
    /// MAC text, decoded) is its MAC of `message`, compared in constant
    /// time word by word.
    #[inline]
    pub fn verify_text(&self, message: &[u8], signature: &MacText) -> bool {
        match &self.0 {
            State::Sha256(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                signature.matches(&mac.finalize().into_bytes().into())
            }
            _ => false,
        }
    }
}

impl fmt::Debug for KeyedHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyedHmac({}, redacted)", self.algorithm())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (key "Jefe"), and RFC 2202's for SHA-1.
    #[test]
    fn every_algorithm_matches_the_rfc_vectors() {
        let message = b"what do ya want for nothing?";
        let cases = [
            (HmacAlgorithm::Sha1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (
                HmacAlgorithm::Sha256,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                HmacAlgorithm::Sha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                HmacAlgorithm::Sha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (algorithm, hex) in cases {
            let mac = KeyedHmac::new(algorithm, b"Jefe");
            let mut out = [0u8; 64];
            let len = mac.mac_into(message, &mut out);
            assert_eq!(len, algorithm.mac_len());
            let text: String = out[..len].iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(text, hex, "{algorithm}");
            assert!(mac.verify(message, &out[..len]));
            out[0] ^= 1;
            assert!(!mac.verify(message, &out[..len]), "{algorithm}: a changed MAC");
            assert!(!mac.verify(message, &out[..len - 1]), "{algorithm}: a short MAC");
        }
    }

    #[test]
    fn a_derived_key_is_the_hash_of_its_parts_and_rekeying_keys_with_the_mac() {
        let derived = KeyedHmac::derived(HmacAlgorithm::Sha256, &[b"salt", b"signer", b"secret"]);
        let direct = KeyedHmac::new(HmacAlgorithm::Sha256, &Sha256::digest(b"saltsignersecret"));
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        assert_eq!(derived.mac_into(b"m", &mut a), 32);
        direct.mac_into(b"m", &mut b);
        assert_eq!(a, b);

        let base = KeyedHmac::new(HmacAlgorithm::Sha1, b"secret");
        let mut key = [0u8; 64];
        let len = base.mac_into(b"cookie-session", &mut key);
        let rekeyed = base.rekeyed(b"cookie-session");
        let direct = KeyedHmac::new(HmacAlgorithm::Sha1, &key[..len]);
        rekeyed.mac_into(b"m", &mut a);
        direct.mac_into(b"m", &mut b);
        assert_eq!(a, b);
        assert_eq!(rekeyed.algorithm(), HmacAlgorithm::Sha1);
    }

    #[test]
    fn the_text_check_is_sha256_only_and_debug_shows_no_material() {
        let mac = KeyedHmac::new(HmacAlgorithm::Sha256, b"key");
        let mut text = String::new();
        mac.sign_into(b"m", &mut text);
        let decoded = MacText::decode(text.as_bytes()).expect("43 characters");
        assert!(mac.verify_text(b"m", &decoded));
        assert!(!mac.verify_text(b"n", &decoded));
        assert!(!KeyedHmac::new(HmacAlgorithm::Sha512, b"key").verify_text(b"m", &decoded));
        assert_eq!(format!("{mac:?}"), "KeyedHmac(sha256, redacted)");
    }
}
