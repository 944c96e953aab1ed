//! Fernet decrypt against its limit: the fastest correct decrypt of the same
//! token, written here with the same primitives and nothing else.

use aes::Aes128;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, InnerIvInit, KeyInit};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use constant_time_eq::constant_time_eq_32;
use hmac::{Hmac, Mac};
use keyroll_core::{KeySet, Keyring};
use keyroll_fernet::{Derive, Encrypter, generate_key};
use sha2::Sha256;

use crate::measure::{Case, Effort, Timing, interleaved};

/// The plaintext: a typical third-party API credential.
pub const PLAINTEXT: &[u8] = b"sk_live_4eC39HqLyjWDarjtT1zdp7dc:user=42";

/// Canonical url-safe base64 with padding, as Fernet tokens are written.
const TOKEN_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The limit: decode the token into one buffer, check version and layout,
/// clone a pre-keyed HMAC-SHA256 over everything before the MAC, compare 32
/// bytes with `constant_time_eq_32`, decrypt AES-128-CBC in place with a
/// pre-expanded key, unpad PKCS#7 and move the plaintext to the front (one
/// allocation, the result).
#[derive(Debug)]
pub struct RawFernet {
    mac: Hmac<Sha256>,
    cipher: Aes128,
}

impl RawFernet {
    /// From Fernet key text (url-safe base64 of signing key ‖ encryption key).
    pub fn new(key_text: &[u8]) -> Self {
        let key = URL_SAFE.decode(key_text).expect("a Fernet key");
        Self {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&key[..16]).expect("16-byte key"),
            cipher: Aes128::new_from_slice(&key[16..32]).expect("16-byte key"),
        }
    }

    /// The plaintext, or `None` for any bad token.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        const HEADER: usize = 1 + 8 + 16;
        let mut bytes = TOKEN_B64.decode(token.trim_ascii()).ok()?;
        let len = bytes.len();
        let ciphertext_len = len.checked_sub(HEADER + 32)?;
        if bytes[0] != 0x80 || ciphertext_len == 0 || ciphertext_len % 16 != 0 {
            return None;
        }
        let (signed, tag) = bytes.split_at(len - 32);
        let mut mac = self.mac.clone();
        mac.update(signed);
        if !constant_time_eq_32(&mac.finalize().into_bytes().into(), tag.try_into().ok()?) {
            return None;
        }
        let iv: [u8; 16] = bytes[9..HEADER].try_into().ok()?;
        let plain_len = cbc::Decryptor::<Aes128>::inner_iv_init(self.cipher.clone(), &iv.into())
            .decrypt_padded_mut::<Pkcs7>(&mut bytes[HEADER..len - 32])
            .ok()?
            .len();
        bytes.copy_within(HEADER..HEADER + plain_len, 0);
        bytes.truncate(plain_len);
        Some(bytes)
    }
}

/// Results of the Fernet section.
#[derive(Debug, Clone)]
pub struct FernetResults {
    /// The raw decrypt.
    pub raw: Timing,
    /// `Encrypter::decrypt`, one key, no TTL.
    pub keyroll: Timing,
    /// Token length in characters.
    pub token_len: usize,
}

/// An encrypter holding one new key, and a token of [`PLAINTEXT`] it made.
pub fn one_key() -> (Encrypter, String) {
    let encrypter = Encrypter::new(
        Keyring::new(KeySet::single("v1", generate_key()).unwrap()),
        Derive::Raw,
    )
    .expect("a Fernet key");
    let token = encrypter.encrypt(PLAINTEXT).expect("encrypts");
    (encrypter, token)
}

/// Measures both in one interleaved run.
pub fn run(effort: Effort) -> FernetResults {
    let (encrypter, token) = one_key();
    let key = encrypter.keyring().key_set().keys()[0].material().clone();
    let raw = RawFernet::new(key.expose_secret());
    assert_eq!(raw.decrypt(&token).as_deref(), Some(PLAINTEXT));
    let mut cases: Vec<Case<'_>> = vec![
        ("raw fernet", Box::new(|| raw.decrypt(&token).is_some())),
        (
            "keyroll fernet",
            Box::new(|| {
                encrypter
                    .decrypt(&token, None)
                    .is_ok_and(|d| d.value.len() == PLAINTEXT.len())
            }),
        ),
    ];
    let t = interleaved(&mut cases, effort);
    FernetResults {
        raw: t[0].clone(),
        keyroll: t[1].clone(),
        token_len: token.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_decrypt_refuses_what_keyroll_refuses() {
        let key = generate_key();
        let encrypter = Encrypter::new(
            Keyring::new(KeySet::single("v1", key.clone()).unwrap()),
            Derive::Raw,
        )
        .unwrap();
        let raw = RawFernet::new(key.expose_secret());
        let token = encrypter.encrypt(PLAINTEXT).unwrap();
        assert_eq!(raw.decrypt(&token).as_deref(), Some(PLAINTEXT));
        let other = Encrypter::new(
            Keyring::new(KeySet::single("v2", generate_key()).unwrap()),
            Derive::Raw,
        )
        .unwrap()
        .encrypt(PLAINTEXT)
        .unwrap();
        let mut flipped = token.clone().into_bytes();
        flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            other.as_str(),
            flipped.as_str(),
            "",
            "gAAAAA",
            &token[..token.len() - 4],
        ] {
            assert_eq!(raw.decrypt(bad), None, "{bad}");
            assert!(encrypter.decrypt(bad, None).is_err(), "{bad}");
        }
    }
}
