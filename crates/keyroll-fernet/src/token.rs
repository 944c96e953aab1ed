//! The Fernet token layout (`fernet/spec` `Spec.md`):
//!
//! ```text
//! Version (0x80) ‖ Timestamp (u64 BE seconds) ‖ IV (16) ‖ Ciphertext (AES-128-CBC, PKCS#7) ‖ HMAC-SHA256 (32)
//! ```
//! base64url with `=` padding, as Python emits it. The HMAC covers every byte
//! before it.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use crate::DecryptError;

pub(crate) const VERSION: u8 = 0x80;
/// Version, timestamp and IV.
pub(crate) const HEADER_LEN: usize = 1 + 8 + 16;
pub(crate) const MAC_LEN: usize = 32;
const BLOCK: usize = 16;

/// Token text: the url-safe alphabet only, with canonical `=` padding, as
/// Python emits it and the spec's Go reference decodes it. Python's decoder
/// also requires the padding but skips stray characters; the spec's invalid
/// vectors (trailing data, `*!?@` inside) require refusing them, so we do.
const TOKEN_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// A decoded token whose layout has been checked (not its MAC).
///
/// Its one buffer also receives the plaintext: the ciphertext is decrypted in
/// place and [`into_plaintext`](Self::into_plaintext) moves it to the front,
/// so a decrypt allocates once (the decoded token, which it returns).
pub(crate) struct RawToken {
    bytes: Vec<u8>,
}

impl RawToken {
    pub(crate) fn parse(token: &str) -> Result<Self, DecryptError> {
        let text = token.trim_ascii();
        if text.is_empty() {
            return Err(DecryptError::Malformed("empty token"));
        }
        let bytes = TOKEN_B64
            .decode(text)
            .map_err(|_| DecryptError::Malformed("not url-safe base64"))?;
        if bytes.first() != Some(&VERSION) {
            return Err(DecryptError::Malformed(
                "unknown version (the first byte is not 0x80)",
            ));
        }
        let ciphertext_len = bytes.len().saturating_sub(HEADER_LEN + MAC_LEN);
        if ciphertext_len == 0 {
            return Err(DecryptError::Malformed("too short"));
        }
        if ciphertext_len % BLOCK != 0 {
            return Err(DecryptError::Malformed(
                "ciphertext is not a whole number of AES blocks",
            ));
        }
        Ok(Self { bytes })
    }

    /// Seconds since the Unix epoch, as stamped (unauthenticated until the MAC is checked).
    pub(crate) fn timestamp(&self) -> u64 {
        u64::from_be_bytes(self.bytes[1..9].try_into().expect("8 bytes"))
    }

    pub(crate) fn iv(&self) -> &[u8; 16] {
        self.bytes[9..HEADER_LEN].try_into().expect("16 bytes")
    }

    /// The ciphertext, to decrypt in place (and to restore by encrypting it
    /// again when the plaintext's padding is bad).
    pub(crate) fn ciphertext_mut(&mut self) -> &mut [u8] {
        let end = self.bytes.len() - MAC_LEN;
        &mut self.bytes[HEADER_LEN..end]
    }

    /// The buffer, reduced to the first `len` bytes of the ciphertext area
    /// (the plaintext once decrypted in place), moved to the front.
    pub(crate) fn into_plaintext(mut self, len: usize) -> Vec<u8> {
        self.bytes.copy_within(HEADER_LEN..HEADER_LEN + len, 0);
        self.bytes.truncate(len);
        self.bytes
    }

    /// Every byte the MAC covers.
    pub(crate) fn signed(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - MAC_LEN]
    }

    pub(crate) fn mac(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - MAC_LEN..]
    }
}
