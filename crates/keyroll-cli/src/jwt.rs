//! `--format jwt` for `sign`/`verify`: HS256 JSON Web Tokens whose `kid` is
//! the signing key's id.

use std::time::Duration;

use keyroll::Keyring;
use keyroll::jwt::Signer;
use serde_json::value::RawValue;

use crate::{Failure, SignOptions, Source, hint, load};

/// JWTs have no salt, and `iat`/`exp` are their timestamps.
fn check(options: &SignOptions) -> Result<(), Failure> {
    if options.salt.is_some() || options.timestamp {
        return Err(Failure::Error(
            "--salt and --timestamp do not apply to --format jwt (use --ttl for iat/exp)".to_owned(),
        ));
    }
    Ok(())
}

/// Signs the JSON object `claims`; with `ttl`, adds `iat` = now and `exp` =
/// now + `ttl` seconds. Without `ttl` the claims must carry a numeric `exp`:
/// `verify` (like PyJWT's default verifiers) refuses a token without one, so
/// `sign` never makes a token that never expires and `verify` would refuse.
pub(crate) async fn sign(
    source: &Source,
    options: &SignOptions,
    ttl: Option<u64>,
    claims: &str,
) -> Result<String, Failure> {
    check(options)?;
    let claims: serde_json::Value =
        serde_json::from_str(claims).map_err(|e| Failure::Error(format!("the claims are not JSON: {e}")))?;
    if !claims.is_object() {
        return Err(Failure::Error("the claims must be a JSON object".to_owned()));
    }
    if ttl.is_none() && !claims.get("exp").is_some_and(serde_json::Value::is_number) {
        return Err(Failure::Error(
            "--format jwt needs --ttl SECS (or an exp claim, a number of Unix seconds): `keyroll verify --format jwt` refuses a token without exp".to_owned(),
        ));
    }
    let signer = Signer::new(Keyring::new(load(source).await?));
    let token = match ttl {
        Some(seconds) => signer.sign_with_ttl(&claims, Duration::from_secs(seconds)),
        None => signer.sign(&claims),
    };
    token.map_err(|e| Failure::Error(e.to_string()))
}

/// Verifies `token` (signature by `kid`, `exp`, `nbf`, `iat`) and returns its
/// claims as signed.
pub(crate) async fn verify(source: &Source, options: &SignOptions, token: &str) -> Result<String, Failure> {
    check(options)?;
    let signer = Signer::new(Keyring::new(load(source).await?));
    let verified = signer
        .verify::<Box<RawValue>>(token)
        .map_err(|e| Failure::Rejected(e.to_string()))?;
    hint(&verified.key);
    Ok(verified.value.get().to_owned())
}
