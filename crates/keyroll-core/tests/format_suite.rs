//! The native format passes the suite every format runs.

use keyroll_core::kit::Rejection;
use keyroll_core::{Format, Keyring, Signer, Verified};
use keyroll_testkit::formats::{self, FormatUnderTest, SignRefused};

struct Native(Signer);

impl FormatUnderTest for Native {
    const FORMAT: Format = Format::Native;

    fn over(keyring: Keyring) -> Self {
        Self(Signer::new(keyring))
    }

    fn sign(&self, value: &str) -> Result<String, SignRefused> {
        Ok(self.0.sign(value)?)
    }

    fn verify(&self, token: &str) -> Result<Verified<String>, Rejection> {
        self.0.verify(token).map_err(|e| e.rejection())
    }
}

#[test]
fn the_native_format_keeps_every_format_promise() {
    formats::run::<Native>();
}
