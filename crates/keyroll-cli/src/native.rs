//! `sign` and `verify` in keyroll's native format.

use std::time::Duration;

use keyroll::{Keyring, Signer};

use crate::{Failure, SignOptions, Source, hint, load};

/// Verifies a native token; with `--timestamp` (and no `--max-age`) it must carry a timestamp.
pub(crate) async fn verify(
    source: &Source,
    options: &SignOptions,
    max_age: Option<u64>,
    token: &str,
) -> Result<String, Failure> {
    let mut signer = signer(source, options).await?;
    if let Some(secs) = max_age {
        signer = signer.with_max_age(Duration::from_secs(secs));
    } else if options.timestamp {
        signer = signer.with_max_age(Duration::MAX);
    }
    let verified = signer
        .verify(token)
        .map_err(|e| Failure::Rejected(e.to_string()))?;
    hint(&verified.key);
    Ok(verified.value)
}

pub(crate) async fn signer(source: &Source, options: &SignOptions) -> Result<Signer, Failure> {
    let signer =
        Signer::new(Keyring::new(load(source).await?)).with_salt(options.salt.clone().unwrap_or_default());
    Ok(if options.timestamp {
        signer.with_timestamps()
    } else {
        signer
    })
}
