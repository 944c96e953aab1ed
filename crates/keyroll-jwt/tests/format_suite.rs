//! JWTs pass the suite every format runs: the value travels as `sub`.

use std::time::Duration;

use keyroll_core::kit::Rejection;
use keyroll_core::{Format, Keyring, Verified};
use keyroll_jwt::Signer;
use keyroll_testkit::formats::{self, FormatUnderTest, SignRefused};
use serde::Deserialize;

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

struct Jwt(Signer);

impl FormatUnderTest for Jwt {
    const FORMAT: Format = Format::Jwt;

    fn over(keyring: Keyring) -> Self {
        Self(Signer::new(keyring))
    }

    fn sign(&self, value: &str) -> Result<String, SignRefused> {
        Ok(self
            .0
            .sign_with_ttl(&serde_json::json!({ "sub": value }), Duration::from_secs(600))?)
    }

    fn verify(&self, token: &str) -> Result<Verified<String>, Rejection> {
        let verified = self
            .0
            .verify::<Claims>(token)
            .map_err(|e| e.rejection().expect("a refusal"))?;
        Ok(Verified {
            value: verified.value.sub,
            key: verified.key,
            timestamp: verified.timestamp,
        })
    }
}

#[test]
fn jwts_keep_every_format_promise() {
    formats::run::<Jwt>();
}
