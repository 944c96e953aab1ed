//! `--format django` for `sign`/`verify`, and `keyroll dumps` / `loads`:
//! Django's `django.core.signing` formats with the keys of a source.

use std::time::Duration;

use keyroll::Keyring;
use keyroll::django::json::JsonText;
use keyroll::django::{Error, Signer, TimestampSigner};
use serde_json::value::RawValue;

use crate::{Failure, Source, hint, load};

/// A token that does not verify is a rejection (exit 1); anything else about
/// Django's format here is a usage error (exit 2).
fn rejected(error: Error) -> Failure {
    Failure::Rejected(error.to_string())
}

fn usage(error: impl std::fmt::Display) -> Failure {
    Failure::Error(error.to_string())
}

async fn keyring(source: &Source) -> Result<Keyring, Failure> {
    Ok(Keyring::new(load(source).await?))
}

/// `Signer(salt=…)` or, with a timestamp, `TimestampSigner(salt=…)`; without
/// `--salt` Django's defaults (its class names) apply.
pub(crate) async fn sign(
    source: &Source,
    salt: Option<&str>,
    timestamp: bool,
    value: &str,
) -> Result<String, Failure> {
    let keyring = keyring(source).await?;
    Ok(if timestamp {
        let mut builder = TimestampSigner::builder(keyring);
        if let Some(salt) = salt {
            builder = builder.salt(salt);
        }
        builder.build().map_err(usage)?.sign(value)?
    } else {
        let mut builder = Signer::builder(keyring);
        if let Some(salt) = salt {
            builder = builder.salt(salt);
        }
        builder.build().map_err(usage)?.sign(value)?
    })
}

/// Verifies with `TimestampSigner` when a timestamp or a maximum age is asked
/// for, with `Signer` otherwise; returns the signed value.
pub(crate) async fn verify(
    source: &Source,
    salt: Option<&str>,
    timestamp: bool,
    max_age: Option<u64>,
    token: &str,
) -> Result<String, Failure> {
    let keyring = keyring(source).await?;
    let verified = if timestamp || max_age.is_some() {
        let mut builder = TimestampSigner::builder(keyring);
        if let Some(salt) = salt {
            builder = builder.salt(salt);
        }
        let signer = builder.build().map_err(usage)?;
        let verified = signer
            .verify(token, max_age.map(Duration::from_secs))
            .map_err(rejected)?;
        (verified.value.to_owned(), verified.key)
    } else {
        let mut builder = Signer::builder(keyring);
        if let Some(salt) = salt {
            builder = builder.salt(salt);
        }
        let signer = builder.build().map_err(usage)?;
        let verified = signer.verify(token).map_err(rejected)?;
        (verified.value.to_owned(), verified.key)
    };
    hint(&verified.1);
    Ok(verified.0)
}

/// `signing.dumps(json.loads(JSON), salt=…, compress=…)`, keeping key order.
pub(crate) async fn dumps(
    source: &Source,
    salt: Option<&str>,
    compress: bool,
    json: &str,
) -> Result<(), Failure> {
    serde_json::from_str::<&RawValue>(json).map_err(|e| usage(format!("the value is not JSON: {e}")))?;
    let keyring = keyring(source).await?;
    let token = keyroll::django::dumps(&keyring, &JsonText(json), salt, compress).map_err(usage)?;
    println!("{token}");
    Ok(())
}

/// `signing.loads(TOKEN, salt=…, max_age=…)`; prints the JSON as signed.
pub(crate) async fn loads(
    source: &Source,
    salt: Option<&str>,
    max_age: Option<u64>,
    token: &str,
) -> Result<(), Failure> {
    let keyring = keyring(source).await?;
    let verified =
        keyroll::django::loads::<Box<RawValue>>(&keyring, token, salt, max_age.map(Duration::from_secs))
            .map_err(rejected)?;
    hint(&verified.key);
    println!("{}", verified.value.get());
    Ok(())
}
