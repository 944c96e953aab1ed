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
    crate::provider::parse_read_response(json, field, std::time::SystemTime::now())
}
