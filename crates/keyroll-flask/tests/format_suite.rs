//! Flask sessions pass the suite every format runs: the value travels as
//! the session's `value` key.

use keyroll_core::kit::Rejection;
use keyroll_core::{Format, Keyring, Verified};
use keyroll_flask::{SecureCookieSessions, Value};
use keyroll_testkit::formats::{self, FormatUnderTest, SignRefused};

struct Flask(SecureCookieSessions);

impl FormatUnderTest for Flask {
    const FORMAT: Format = Format::Flask;

    fn over(keyring: Keyring) -> Self {
        Self(SecureCookieSessions::new(keyring))
    }

    fn sign(&self, value: &str) -> Result<String, SignRefused> {
        Ok(self.0.save(&Value::dict([("value", Value::from(value))]))?)
    }

    fn verify(&self, token: &str) -> Result<Verified<String>, Rejection> {
        let verified = self
            .0
            .load(token)
            .map_err(|e| e.rejection().expect("a refusal"))?;
        let Value::Dict(mut session) = verified.value else {
            panic!("a session is a dict");
        };
        let Some(Value::String(value)) = session.remove("value") else {
            panic!("the session holds the value");
        };
        Ok(Verified {
            value,
            key: verified.key,
            timestamp: verified.timestamp,
        })
    }
}

#[test]
fn flask_sessions_keep_every_format_promise() {
    formats::run::<Flask>();
}
