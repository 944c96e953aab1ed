//! `--format flask` for `sign`/`verify`: Flask's default session cookie, its
//! session as Flask's tagged JSON.

use std::time::Duration;

use keyroll::Keyring;
use keyroll::flask::{SecureCookieSessions, SecureCookieSessionsBuilder, Value};

use crate::{Failure, Source, hint, load};

async fn sessions(source: &Source, salt: Option<&str>) -> Result<SecureCookieSessionsBuilder, Failure> {
    let builder = SecureCookieSessions::builder(Keyring::new(load(source).await?));
    Ok(match salt {
        Some(salt) => builder.salt(salt),
        None => builder,
    })
}

/// The session cookie for `session` (tagged JSON, as Flask writes it),
/// salted with `salt` or Flask's `cookie-session`.
pub(crate) async fn sign(source: &Source, salt: Option<&str>, session: &str) -> Result<String, Failure> {
    let session = Value::from_tagged_json(session)
        .map_err(|e| Failure::Error(format!("the session is not Flask's tagged JSON: {e}")))?;
    sessions(source, salt)
        .await?
        .build()
        .save(&session)
        .map_err(|e| Failure::Error(e.to_string()))
}

/// Opens `cookie` (signature, age at most `max_age` seconds or Flask's 31
/// days) and returns the session as tagged JSON.
pub(crate) async fn verify(
    source: &Source,
    salt: Option<&str>,
    max_age: Option<u64>,
    cookie: &str,
) -> Result<String, Failure> {
    let mut sessions = sessions(source, salt).await?;
    if let Some(seconds) = max_age {
        sessions = sessions.max_age(Duration::from_secs(seconds));
    }
    let verified = sessions
        .build()
        .load(cookie)
        .map_err(|e| Failure::Rejected(e.to_string()))?;
    hint(&verified.key);
    verified
        .value
        .to_tagged_json()
        .map_err(|e| Failure::Error(e.to_string()))
}
