//! New random keys: what `keyroll generate`, `keyroll rotate` and automatic
//! rotation ([`RefresherBuilder::rotate_every`](crate::RefresherBuilder::rotate_every))
//! publish.

use base64::Engine as _;
use rand::Rng as _;

use crate::{KeyMaterial, KeySet, KeyStrength, Weakness};

/// Django's secret-key alphabet (`django.core.management.utils.get_random_secret_key`).
pub const DJANGO_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)";

/// Characters of a generated signing key: what Django's own check accepts.
pub const DJANGO_KEY_CHARS: usize = 50;

/// Random bytes of a Fernet key.
pub const FERNET_KEY_BYTES: usize = 32;

/// The form of a generated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyForm {
    /// Characters of [`DJANGO_ALPHABET`]; the first is never `#` (a plain
    /// text key file reads such a line as a comment) nor `@` (`vault kv put
    /// key=@…` reads a file of that name).
    Chars(usize),
    /// Random bytes as URL-safe base64 with padding: the form Fernet keys
    /// take (`Bytes(32)` is a Fernet key).
    Bytes(usize),
}

impl KeyForm {
    /// A signing key as Django generates one: [`DJANGO_KEY_CHARS`] characters.
    pub const SIGNING: Self = Self::Chars(DJANGO_KEY_CHARS);
    /// A Fernet key: [`FERNET_KEY_BYTES`] random bytes.
    pub const FERNET: Self = Self::Bytes(FERNET_KEY_BYTES);

    /// The form of the key `set` signs with: a Fernet key (32 bytes in
    /// base64, either alphabet, as `cryptography` accepts) makes a Fernet
    /// key, anything else a signing key.
    pub fn of(set: &KeySet) -> Self {
        let text = set.signing_key().material().expose_secret().trim_ascii();
        let engines = [
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::STANDARD,
        ];
        // A Fernet key is 44 characters; anything longer cannot be one.
        let mut decoded = [0u8; 33];
        let fernet = text.len() == 44
            && engines.iter().any(|engine| {
                engine
                    .decode_slice(text, &mut decoded)
                    .is_ok_and(|len| len == FERNET_KEY_BYTES)
            });
        decoded.fill(0);
        if fernet { Self::FERNET } else { Self::SIGNING }
    }

    /// The form asked for as `chars` characters of Django's alphabet or
    /// `bytes` random bytes, as every door's options say it; `None` when
    /// neither is given (the caller's default applies).
    ///
    /// # Errors
    /// [`KeyGenError::TwoForms`] when both are given.
    pub fn asked(chars: Option<usize>, bytes: Option<usize>) -> Result<Option<Self>, KeyGenError> {
        match (chars, bytes) {
            (Some(_), Some(_)) => Err(KeyGenError::TwoForms),
            (chars, bytes) => Ok(chars.map(Self::Chars).or(bytes.map(Self::Bytes))),
        }
    }
}

impl Default for KeyForm {
    fn default() -> Self {
        Self::SIGNING
    }
}

/// Why no key was generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyGenError {
    /// A key form of zero characters or bytes (the form asked for).
    #[error("a key needs at least 1 {}", match .0 { KeyForm::Chars(_) => "character", KeyForm::Bytes(_) => "byte" })]
    Empty(KeyForm),
    /// The generated key would be refused by every replica.
    #[error(
        "the generated key would be weak ({weakness}); keyroll and every replica refuse it: use at least \
         {min} characters or bytes"
    )]
    Weak {
        /// What is wrong with it.
        weakness: Weakness,
        /// The fewest characters or bytes the strength accepts.
        min: usize,
    },
    /// Both a number of characters and a number of bytes were asked for.
    #[error("give a number of characters or of bytes for the key, not both")]
    TwoForms,
    /// More characters or bytes than [`MAX_KEY_LENGTH`] (the form asked for).
    #[error("a key of at most {MAX_KEY_LENGTH} characters or bytes is generated, not {}", match .0 { KeyForm::Chars(n) | KeyForm::Bytes(n) => n })]
    TooLong(KeyForm),
}

/// The most characters or bytes [`generate`] makes: far beyond any key's
/// strength (an HMAC key longer than its hash's block is hashed first), and
/// a bound on what a number from outside can make it allocate.
pub const MAX_KEY_LENGTH: usize = 4096;

/// A new random key of `form`; refused when `strength` (what every replica
/// checks) would refuse it.
///
/// # Errors
/// [`KeyGenError::Empty`] for zero characters or bytes,
/// [`KeyGenError::TooLong`] beyond [`MAX_KEY_LENGTH`],
/// [`KeyGenError::Weak`] below the strength.
pub fn generate(form: KeyForm, strength: &KeyStrength) -> Result<KeyMaterial, KeyGenError> {
    let mut rng = rand::rng();
    let text = match form {
        KeyForm::Bytes(0) | KeyForm::Chars(0) => return Err(KeyGenError::Empty(form)),
        KeyForm::Bytes(n) | KeyForm::Chars(n) if n > MAX_KEY_LENGTH => {
            return Err(KeyGenError::TooLong(form));
        }
        KeyForm::Bytes(n) => {
            let random: zeroize::Zeroizing<Vec<u8>> =
                zeroize::Zeroizing::new((0..n).map(|_| rng.random()).collect());
            base64::engine::general_purpose::URL_SAFE.encode(&*random)
        }
        KeyForm::Chars(n) => (0..n)
            .map(|i| {
                loop {
                    let c = char::from(DJANGO_ALPHABET[rng.random_range(0..DJANGO_ALPHABET.len())]);
                    if i > 0 || (c != '#' && c != '@') {
                        break c;
                    }
                }
            })
            .collect(),
    };
    let key = KeyMaterial::from(text);
    strength.check(&key).map_err(|weakness| KeyGenError::Weak {
        weakness,
        min: strength.min_bytes,
    })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_asked_for_by_characters_or_bytes_never_both() {
        assert_eq!(KeyForm::asked(None, None), Ok(None));
        assert_eq!(KeyForm::asked(Some(64), None), Ok(Some(KeyForm::Chars(64))));
        assert_eq!(KeyForm::asked(None, Some(32)), Ok(Some(KeyForm::Bytes(32))));
        assert_eq!(KeyForm::asked(Some(64), Some(32)), Err(KeyGenError::TwoForms));
        let strength = KeyStrength::default();
        assert!(generate(KeyForm::Bytes(MAX_KEY_LENGTH), &strength).is_ok());
        let huge = KeyForm::Chars(usize::MAX);
        assert_eq!(generate(huge, &strength), Err(KeyGenError::TooLong(huge)));
    }

    #[test]
    fn generated_keys_take_the_form_asked_for() {
        let strength = KeyStrength::default();
        for _ in 0..200 {
            let key = generate(KeyForm::SIGNING, &strength).expect("strong");
            let text = key.expose_secret();
            assert_eq!(text.len(), DJANGO_KEY_CHARS);
            assert!(text.iter().all(|c| DJANGO_ALPHABET.contains(c)));
            assert!(text[0] != b'#' && text[0] != b'@');
        }
        let key = generate(KeyForm::FERNET, &strength).expect("strong");
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(key.expose_secret())
            .expect("URL-safe base64");
        assert_eq!(bytes.len(), FERNET_KEY_BYTES);
    }

    #[test]
    fn empty_and_weak_forms_are_refused() {
        let strength = KeyStrength::default();
        assert_eq!(
            generate(KeyForm::Chars(0), &strength),
            Err(KeyGenError::Empty(KeyForm::Chars(0)))
        );
        assert_eq!(
            generate(KeyForm::Bytes(0), &strength),
            Err(KeyGenError::Empty(KeyForm::Bytes(0)))
        );
        let weak = generate(KeyForm::Chars(5), &strength).expect_err("weak");
        assert!(matches!(weak, KeyGenError::Weak { min: 32, .. }), "{weak}");
        assert!(weak.to_string().contains("at least 32"), "{weak}");
    }

    #[test]
    fn a_fernet_key_makes_a_fernet_key_and_anything_else_a_signing_key() {
        let strength = KeyStrength::default();
        let set = |key: KeyMaterial| KeySet::single("v1", key).expect("a key set");
        let fernet = generate(KeyForm::FERNET, &strength).expect("strong");
        assert_eq!(KeyForm::of(&set(fernet)), KeyForm::FERNET);
        let standard = KeyMaterial::from("q+/q".repeat(10) + "abc=");
        assert_eq!(KeyForm::of(&set(standard)), KeyForm::FERNET);
        let signing = generate(KeyForm::SIGNING, &strength).expect("strong");
        assert_eq!(KeyForm::of(&set(signing)), KeyForm::SIGNING);
        let long = generate(KeyForm::Bytes(48), &strength).expect("strong");
        assert_eq!(KeyForm::of(&set(long)), KeyForm::SIGNING);
    }
}
