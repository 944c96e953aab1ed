//! The parser of `AccessSecretVersion` answers, for the fuzz targets in
//! `fuzz/` (cargo feature `fuzzing`). Not a stable API: the wrapper calls
//! exactly the function a [`GcpProvider`](crate::GcpProvider) fetch uses, so
//! a target reaches it without a live store.

use keyroll_core::{KeyMaterial, ProviderError};

/// The client's answer to `AccessSecretVersion` (it implements serde's
/// `Deserialize` for the REST shape
/// `{"name": "...", "payload": {"data": "BASE64", "dataCrc32c": "INT64"}}`),
/// re-exported so targets use the client version this crate uses.
pub use google_cloud_secretmanager_v1::model::AccessSecretVersionResponse;

/// The key in `response`, the answer for version `name`, as a fetch reads
/// it: the payload's data, its `dataCrc32c` verified when present (a missing
/// checksum is accepted with a warning; a missing payload is an empty key).
///
/// ```
/// use keyroll_gcp::fuzzing::{AccessSecretVersionResponse, payload_material};
///
/// let name = "projects/p/secrets/s/versions/1";
/// // "k3y" and its CRC32C (0xE9B9_13DA).
/// let good = r#"{"payload": {"data": "azN5", "dataCrc32c": "3921220570"}}"#;
/// let response: AccessSecretVersionResponse = serde_json::from_str(good)?;
/// assert_eq!(payload_material(name, response)?.expose_secret(), b"k3y");
///
/// let corrupted = r#"{"payload": {"data": "azN6", "dataCrc32c": "3921220570"}}"#;
/// assert!(payload_material(name, serde_json::from_str(corrupted)?).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Invalid`](keyroll_core::ProviderErrorKind::Invalid) when the checksum
/// does not match the data; the message names `name`, never the data.
pub fn payload_material(
    name: &str,
    response: AccessSecretVersionResponse,
) -> Result<KeyMaterial, ProviderError> {
    crate::provider::payload_material(name, response)
}

/// The creation time a fetch reports for a version's `createTime` of
/// `seconds` and `nanos` (clamped into the range the client accepts, as its
/// parser does); `None` before 1970.
///
/// ```
/// assert!(keyroll_gcp::fuzzing::create_time(1_700_000_000, 5).is_some());
/// assert!(keyroll_gcp::fuzzing::create_time(-5, 0).is_none());
/// ```
pub fn create_time(seconds: i64, nanos: i32) -> Option<std::time::SystemTime> {
    crate::provider::system_time(&google_cloud_wkt::Timestamp::clamp(seconds, nanos))
}
