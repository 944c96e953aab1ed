//! Fernet keys: parsed from Fernet key text or derived with HKDF, expanded once.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use aes::Aes128;
use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use base64::engine::{DecodePaddingMode, general_purpose};
use constant_time_eq::constant_time_eq_32;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use keyroll_core::KeyMaterial;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::token::{HEADER_LEN, MAC_LEN, RawToken, VERSION};

/// HKDF salt of django-fernet-fields (`fernet_fields/hkdf.py`).
pub const HKDF_SALT: &[u8] = b"django-fernet-fields-hkdf-salt";
/// HKDF info of django-fernet-fields (`fernet_fields/hkdf.py`).
pub const HKDF_INFO: &[u8] = b"django-fernet-fields";

/// Fernet key text: url-safe alphabet, `=` padding optional (Python emits it).
const KEY_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How each key of the key set becomes a Fernet key. Chosen by configuration
/// (`--derive raw|hkdf` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Derive {
    /// Each key *is* a Fernet key: 32 random bytes as url-safe base64 text
    /// (44 characters), as `Fernet.generate_key()` and [`generate_key`] make.
    #[default]
    Raw,
    /// Each key is an arbitrary secret (a Django `SECRET_KEY`, an entry of
    /// `FERNET_KEYS`) stretched with HKDF-SHA256 exactly as django-fernet-fields
    /// does: salt [`HKDF_SALT`], info [`HKDF_INFO`], 32 bytes.
    Hkdf,
}

impl Derive {
    /// The configuration name: `raw` or `hkdf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Hkdf => "hkdf",
        }
    }
}

impl fmt::Display for Derive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A derivation name that is neither `raw` nor `hkdf`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key derivation `{0}`: use `raw` (keys are Fernet keys) or `hkdf` (django-fernet-fields)")]
pub struct UnknownDerive(pub String);

impl FromStr for Derive {
    type Err = UnknownDerive;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "raw" => Ok(Self::Raw),
            "hkdf" => Ok(Self::Hkdf),
            _ => Err(UnknownDerive(name.to_owned())),
        }
    }
}

/// A key of the key set cannot be used as a Fernet key. Names the key by id,
/// never shows its material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// With [`Derive::Raw`], the key text is not 32 bytes of url-safe base64.
    #[error(
        "key {id} is not a Fernet key ({}): a Fernet key is 32 random bytes as url-safe base64 \
         (44 characters, from `Fernet.generate_key()`); to use an arbitrary secret, derive Fernet \
         keys from it with `--derive hkdf` (Derive::Hkdf, compatible with django-fernet-fields)",
        describe_len(*decoded_len)
    )]
    NotAFernetKey {
        /// The key's version id (or fingerprint).
        id: String,
        /// How many bytes the text decoded to, if it was base64 at all.
        decoded_len: Option<usize>,
    },
    /// The keyring has failed closed
    /// ([`Keyring::serving_at`](keyroll_core::Keyring::serving_at)): nothing
    /// encrypts (or decrypts) until the store offers a usable key.
    #[error(transparent)]
    Closed(#[from] keyroll_core::Closed),
}

fn describe_len(decoded_len: Option<usize>) -> String {
    match decoded_len {
        Some(len) => format!("it decodes to {len} bytes, not 32"),
        None => "it is not url-safe base64 text".to_owned(),
    }
}

/// Makes a new random Fernet key, as url-safe base64 text with padding
/// (what Python's `Fernet.generate_key()` returns).
///
/// ```
/// let key = keyroll_fernet::generate_key();
/// assert_eq!(key.len(), 44);
/// assert!(keyroll_fernet::FernetKey::from_key_text(key.expose_secret()).is_ok());
/// ```
pub fn generate_key() -> KeyMaterial {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *bytes);
    KeyMaterial::new(URL_SAFE.encode(*bytes))
}

/// The Fernet key django-fernet-fields derives from `secret` (its
/// `derive_fernet_key`), as url-safe base64 text with padding.
///
/// ```
/// let key = keyroll_fernet::hkdf_fernet_key(b"a Django SECRET_KEY, long and random");
/// assert_eq!(key.len(), 44);
/// ```
pub fn hkdf_fernet_key(secret: &[u8]) -> KeyMaterial {
    KeyMaterial::new(URL_SAFE.encode(*hkdf_bytes(secret)))
}

fn hkdf_bytes(secret: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT), secret)
        .expand(HKDF_INFO, &mut *okm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// One Fernet key, ready to use: the HMAC-SHA256 state pre-keyed with the
/// signing half and the AES-128 key schedule of the encryption half, built
/// once (an [`Encrypter`](crate::Encrypter) builds them once per key-set
/// generation).
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct FernetKey {
    mac: Hmac<Sha256>,
    cipher: Aes128,
}

/// Why one key whose MAC matched could not open one token.
pub(crate) enum OpenFailure {
    /// The plaintext is not PKCS#7 padded.
    Padding,
}

impl FernetKey {
    /// A key from its 32 bytes: signing key first, then encryption key, as
    /// the spec lays them out.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let (signing, encryption) = bytes.split_at(16);
        Self {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(signing).expect("HMAC accepts 16-byte keys"),
            cipher: Aes128::new_from_slice(encryption).expect("AES-128 takes 16-byte keys"),
        }
    }

    /// A key from Fernet key text (url-safe base64 of 32 bytes; surrounding
    /// whitespace and missing padding are tolerated, and so is the standard
    /// `+/` alphabet, which Python accepts too).
    pub fn from_key_text(text: &[u8]) -> Result<Self, KeyError> {
        Self::parse_text(text).map_err(|decoded_len| KeyError::NotAFernetKey {
            id: KeyMaterial::new(text).fingerprint(),
            decoded_len,
        })
    }

    /// The key derived with HKDF-SHA256 from `secret`, as django-fernet-fields does.
    pub fn from_secret_hkdf(secret: &[u8]) -> Self {
        Self::from_bytes(&hkdf_bytes(secret))
    }

    /// The Fernet key for `material` under `derive`; `id` names the key in
    /// errors.
    pub fn from_material(id: &str, material: &KeyMaterial, derive: Derive) -> Result<Self, KeyError> {
        match derive {
            Derive::Raw => {
                Self::parse_text(material.expose_secret()).map_err(|decoded_len| KeyError::NotAFernetKey {
                    id: id.to_owned(),
                    decoded_len,
                })
            }
            Derive::Hkdf => Ok(Self::from_secret_hkdf(material.expose_secret())),
        }
    }

    fn parse_text(text: &[u8]) -> Result<Self, Option<usize>> {
        let text = text.trim_ascii();
        let translated: Zeroizing<Vec<u8>> = Zeroizing::new(
            text.iter()
                .map(|&b| match b {
                    b'+' => b'-',
                    b'/' => b'_',
                    other => other,
                })
                .collect(),
        );
        let mut bytes = Zeroizing::new([0u8; 48]);
        let len = KEY_B64
            .decode_slice(&*translated, &mut *bytes)
            .map_err(|e| match e {
                base64::DecodeSliceError::OutputSliceTooSmall => Some(translated.len() * 3 / 4),
                base64::DecodeSliceError::DecodeError(_) => None,
            })?;
        if len != 32 {
            return Err(Some(len));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes[..32]);
        Ok(Self::from_bytes(&key))
    }

    /// Encrypts `plaintext` into a token stamped with `at` (whole seconds),
    /// under a fresh random IV.
    pub fn encrypt_at(&self, plaintext: &[u8], at: SystemTime) -> String {
        self.encrypt_stamped(
            plaintext,
            at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        )
    }

    /// Encrypts under a fresh random IV, stamped `timestamp` seconds.
    pub(crate) fn encrypt_stamped(&self, plaintext: &[u8], timestamp: u64) -> String {
        let mut iv = [0u8; 16];
        rand::rng().fill_bytes(&mut iv);
        self.encrypt_with_iv(plaintext, timestamp, &iv)
    }

    /// Encrypts with a caller-chosen IV and timestamp: deterministic, for the
    /// spec's test vectors and known-answer tests only. Never reuse an IV
    /// with the same key for real data; use [`encrypt_at`](Self::encrypt_at).
    pub fn encrypt_with_iv(&self, plaintext: &[u8], timestamp: u64, iv: &[u8; 16]) -> String {
        let ciphertext = cbc::Encryptor::<Aes128>::inner_iv_init(self.cipher.clone(), iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut token = Vec::with_capacity(HEADER_LEN + ciphertext.len() + MAC_LEN);
        token.push(VERSION);
        token.extend_from_slice(&timestamp.to_be_bytes());
        token.extend_from_slice(iv);
        token.extend_from_slice(&ciphertext);
        let mut mac = self.mac.clone();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        general_purpose::URL_SAFE.encode(token)
    }

    /// Checks the MAC in constant time.
    pub(crate) fn mac_matches(&self, token: &RawToken) -> bool {
        let mut mac = self.mac.clone();
        mac.update(token.signed());
        token
            .mac()
            .try_into()
            .is_ok_and(|tag: &[u8; MAC_LEN]| constant_time_eq_32(&mac.finalize().into_bytes().into(), tag))
    }

    /// Decrypts the token's ciphertext in place (call after
    /// [`mac_matches`](Self::mac_matches)) and returns the plaintext's length,
    /// or [`OpenFailure::Padding`] with the ciphertext restored, so that the
    /// token can still be tried with other keys.
    pub(crate) fn decrypt_in_place(&self, token: &mut RawToken) -> Result<usize, OpenFailure> {
        let iv = *token.iv();
        let decrypted = cbc::Decryptor::<Aes128>::inner_iv_init(self.cipher.clone(), &iv.into())
            .decrypt_padded_mut::<Pkcs7>(token.ciphertext_mut())
            .map(<[u8]>::len);
        decrypted.map_err(|_| {
            // Every block was decrypted before the padding was read: CBC
            // under the same key and IV maps them back to the ciphertext.
            let blocks = token.ciphertext_mut();
            let len = blocks.len();
            cbc::Encryptor::<Aes128>::inner_iv_init(self.cipher.clone(), &iv.into())
                .encrypt_padded_mut::<NoPadding>(blocks, len)
                .expect("the ciphertext is whole blocks");
            OpenFailure::Padding
        })
    }
}

impl fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FernetKey(redacted)")
    }
}
