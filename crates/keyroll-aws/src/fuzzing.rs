//! The parsers of `GetSecretValue` answers, for the fuzz targets in `fuzz/`
//! (cargo feature `fuzzing`). Not a stable API: these wrappers call exactly
//! the functions [`AwsProvider::fetch`](keyroll_core::KeyProvider::fetch)
//! uses, so a target reaches them without a live store.

use keyroll_core::{KeyMaterial, ProviderError};

/// The key in one `GetSecretValue` answer of version `version_id` of secret
/// `secret_id`, as a fetch with `field` (the URI's `?field=`) reads it:
/// without a field the whole `secret_string`, else the whole `secret_binary`;
/// with a field, that string field of a JSON object `secret_string`.
///
/// ```
/// use keyroll_aws::fuzzing::material_of;
///
/// let key = material_of("app", "v1", Some("key"), Some(r#"{"key":"k3y"}"#), None)?;
/// assert_eq!(key.expose_secret(), b"k3y");
/// assert!(material_of("app", "v1", Some("key"), None, Some(b"k3y")).is_err());
/// # Ok::<(), keyroll_core::ProviderError>(())
/// ```
///
/// # Errors
/// [`Invalid`](keyroll_core::ProviderErrorKind::Invalid) when the answer
/// holds no key: neither string nor binary, an empty key, a field asked of a
/// binary, a string that is not a JSON object with that field as a string.
/// The message names the secret, version and field, never the contents.
pub fn material_of(
    secret_id: &str,
    version_id: &str,
    field: Option<&str>,
    secret_string: Option<&str>,
    secret_binary: Option<&[u8]>,
) -> Result<KeyMaterial, ProviderError> {
    crate::payload::material_of(secret_id, version_id, field, secret_string, secret_binary)
}

/// The string in `field` of the JSON object `text` (possibly empty: the
/// emptiness check is [`material_of`]'s).
///
/// ```
/// use keyroll_aws::fuzzing::json_field;
///
/// assert_eq!(json_field(r#"{"key":"k3y","n":1}"#, "key").unwrap().expose_secret(), b"k3y");
/// assert!(json_field(r#"{"key":"k3y","n":1}"#, "n").is_err());
/// ```
///
/// # Errors
/// What is wrong, as text for [`material_of`]'s message (never a value of
/// the document): not JSON, not an object, no such field, not a string.
pub fn json_field(text: &str, field: &str) -> Result<KeyMaterial, String> {
    crate::payload::json_field(text, field)
}

/// The creation time a fetch reports for a `CreatedDate` of `epoch_seconds`
/// (what the SDK parses from the answer's JSON number): `None` when it is
/// not a representable moment. 1e300 gives the latest one, which the policy
/// must take without overflowing.
///
/// ```
/// use keyroll_aws::fuzzing::created_date;
///
/// assert!(created_date(1.7e9).is_some());
/// let _ = created_date(1e300);
/// ```
pub fn created_date(epoch_seconds: f64) -> Option<std::time::SystemTime> {
    crate::payload::system_time(&aws_sdk_secretsmanager::primitives::DateTime::from_secs_f64(
        epoch_seconds,
    ))
}
