//! Fernet passes the suite every format runs (keys stretched with HKDF, so
//! any secret is a key).

use keyroll_core::kit::Rejection;
use keyroll_core::{Format, Keyring, Verified};
use keyroll_fernet::{Derive, Encrypter};
use keyroll_testkit::formats::{self, FormatUnderTest, SignRefused};

struct Fernet(Encrypter);

impl FormatUnderTest for Fernet {
    const FORMAT: Format = Format::Fernet;

    fn over(keyring: Keyring) -> Self {
        Self(Encrypter::new(keyring, Derive::Hkdf).expect("any secret derives a key"))
    }

    fn sign(&self, value: &str) -> Result<String, SignRefused> {
        Ok(self.0.encrypt(value)?)
    }

    fn verify(&self, token: &str) -> Result<Verified<String>, Rejection> {
        let verified = self
            .0
            .decrypt(token, None)
            .map_err(|e| e.rejection().expect("a refusal"))?;
        Ok(Verified {
            value: String::from_utf8(verified.value).expect("UTF-8 was encrypted"),
            key: verified.key,
            timestamp: verified.timestamp,
        })
    }
}

#[test]
fn fernet_keeps_every_format_promise() {
    formats::run::<Fernet>();
}
