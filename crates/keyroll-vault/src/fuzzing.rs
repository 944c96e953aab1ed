//! The parser of KV v2 read answers, for the fuzz targets in `fuzz/` (cargo
//! feature `fuzzing`). Not a stable API: the wrapper calls exactly the
//! function a [`VaultProvider`](crate::VaultProvider) fetch uses, so a target
//! reaches it without a live store.

use keyroll_core::{KeyVersion, ProviderError};

/// The key version in a KV v2 read answer (the `data` object of
/// `GET MOUNT/data/PATH`: the version's fields and its metadata), as a fetch
/// reports it; `None` when the version is deleted or destroyed.
///
/// ```
/// use keyroll_vault::fuzzing::newest_version;
///
/// let answer = br#"{"data": {"key": "k3y"}, "metadata": {"created_time": "2026-01-02T03:04:05Z",
///     "deletion_time": "", "destroyed": false, "version": 7}}"#;
/// let version = newest_version(answer, "key")?.expect("enabled");
/// assert_eq!((version.id.as_str(), version.material.expose_secret()), ("7", &b"k3y"[..]));
/// assert!(newest_version(answer, "other").is_err());
/// # Ok::<(), keyroll_core::ProviderError>(())
/// ```
///
/// # Errors
/// [`Invalid`](keyroll_core::ProviderErrorKind::Invalid): not a KV v2
/// answer, no such field, a field that is not a non-empty string. The
/// message names the field and version, never a value.
pub fn newest_version(json: &[u8], field: &str) -> Result<Option<KeyVersion>, ProviderError> {
    crate::payload::parse_read_response(json, field, std::time::SystemTime::now())
}

/// How long until a token granted for `ttl_secs` seconds (a login's
/// `lease_duration`, a lookup's `ttl`) expires and is renewed, as the
/// provider counts them: `None` for a moment too far to count (the token
/// never expires for us) or a TTL of 0 (no expiry).
///
/// ```
/// use std::time::Duration;
/// use keyroll_vault::fuzzing::lease_times;
///
/// let (expires, renew) = lease_times(3600);
/// assert!(expires.unwrap() <= Duration::from_secs(3600) && renew.unwrap() <= Duration::from_secs(2400));
/// assert_eq!(lease_times(u64::MAX), (None, None));
/// ```
pub fn lease_times(ttl_secs: u64) -> (Option<std::time::Duration>, Option<std::time::Duration>) {
    crate::auth::lease_times(std::time::Duration::from_secs(ttl_secs))
}
