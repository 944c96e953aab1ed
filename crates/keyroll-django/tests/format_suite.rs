//! Django's `Signer` and `TimestampSigner` pass the suite every format runs.

use std::time::Duration;

use keyroll_core::kit::Rejection;
use keyroll_core::{Format, Keyring, Verified};
use keyroll_django::{Signer, TimestampSigner};
use keyroll_testkit::formats::{self, FormatUnderTest, SignRefused};

struct Plain(Signer);

impl FormatUnderTest for Plain {
    const FORMAT: Format = Format::Django;

    fn over(keyring: Keyring) -> Self {
        Self(Signer::new(keyring))
    }

    fn sign(&self, value: &str) -> Result<String, SignRefused> {
        Ok(self.0.sign(value)?)
    }

    fn verify(&self, token: &str) -> Result<Verified<String>, Rejection> {
        let verified = self
            .0
            .verify(token)
            .map_err(|e| e.rejection().expect("a refusal"))?;
        Ok(Verified {
            value: verified.value.to_owned(),
            key: verified.key,
            timestamp: verified.timestamp,
        })
    }
}

struct Timed(TimestampSigner);

impl FormatUnderTest for Timed {
    const FORMAT: Format = Format::Django;

    fn over(keyring: Keyring) -> Self {
        Self(TimestampSigner::new(keyring))
    }

    fn sign(&self, value: &str) -> Result<String, SignRefused> {
        Ok(self.0.sign(value)?)
    }

    fn verify(&self, token: &str) -> Result<Verified<String>, Rejection> {
        let verified = self
            .0
            .verify(token, Some(Duration::from_secs(60)))
            .map_err(|e| e.rejection().expect("a refusal"))?;
        Ok(Verified {
            value: verified.value.to_owned(),
            key: verified.key,
            timestamp: verified.timestamp,
        })
    }
}

#[test]
fn the_django_signer_keeps_every_format_promise() {
    formats::run::<Plain>();
}

#[test]
fn the_django_timestamp_signer_keeps_every_format_promise() {
    formats::run::<Timed>();
}
