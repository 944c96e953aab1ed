//! What one KV v2 read answer holds: a version's key (one string field of its
//! data), number, creation time and state. Pure functions, shared by the
//! provider and the fuzz targets.

use std::time::SystemTime;

use keyroll_core::remote::{FieldProblem, JsonSecret};
use keyroll_core::{KeyMaterial, KeyState, KeyVersion, ProviderError};
use vaultrs::api::kv2::responses::ReadSecretResponse;

/// The key of version `version` of `secret`: the non-empty string in
/// `field` of its data. Errors name fields, never values.
pub(crate) fn key_of(
    data: &JsonSecret,
    field: &str,
    secret: &str,
    version: u64,
) -> Result<KeyMaterial, ProviderError> {
    match data.field(field) {
        Ok(key) if !key.is_empty() => Ok(key),
        Ok(_) => Err(ProviderError::invalid(format!(
            "version {version} of {secret} has an empty field `{field}`"
        ))),
        Err(FieldProblem::NotString { .. }) => Err(ProviderError::invalid(format!(
            "field `{field}` of version {version} of {secret} is not a string"
        ))),
        Err(FieldProblem::Missing { fields, .. }) => Err(ProviderError::invalid(format!(
            "version {version} of {secret} has no field `{field}` (fields: {}); set the field with ?field=NAME",
            fields.join(", ")
        ))),
        Err(_) => Err(ProviderError::invalid(format!(
            "version {version} of {secret} is not a set of fields; is the mount a KV version 2 engine?"
        ))),
    }
}

/// A version's state from Vault's flags, and when it is (to be) deleted.
pub(crate) fn state_of(
    destroyed: bool,
    deletion_time: &str,
    now: SystemTime,
) -> (KeyState, Option<SystemTime>) {
    let deleted_at = parse_time(deletion_time);
    let state = if destroyed {
        KeyState::Destroyed
    } else if deleted_at.is_some_and(|at| at <= now) {
        KeyState::Disabled
    } else {
        KeyState::Enabled
    };
    (state, deleted_at)
}

/// A version as reported.
pub(crate) fn key_version(
    number: u64,
    material: KeyMaterial,
    state: KeyState,
    created_time: &str,
    deleted_at: Option<SystemTime>,
) -> KeyVersion {
    let mut version = KeyVersion::new(number.to_string(), material).with_state(state);
    if let Some(created) = parse_time(created_time) {
        version = version.with_created(created);
    }
    if state == KeyState::Enabled
        && let Some(at) = deleted_at
    {
        // `delete_version_after`: Vault will delete it then.
        version = version.with_expires(at);
    }
    version
}

/// [`enabled_version`] of a read answer's JSON (the fuzz target's entry).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn parse_read_response(
    json: &[u8],
    field: &str,
    now: SystemTime,
) -> Result<Option<KeyVersion>, ProviderError> {
    // The error may quote the input, which may hold a key: no detail.
    let response: ReadSecretResponse = serde_json::from_slice(json)
        .map_err(|_| ProviderError::invalid("not a KV v2 read answer (data and metadata)"))?;
    enabled_version(response, field, "fuzz/secret", now)
}

/// The version a data-path read answered with, when it verifies: `None` when
/// it is deleted or destroyed (the metadata read reports those).
pub(crate) fn enabled_version(
    response: ReadSecretResponse,
    field: &str,
    secret: &str,
    now: SystemTime,
) -> Result<Option<KeyVersion>, ProviderError> {
    let meta = response.metadata;
    let data = JsonSecret::from_value(response.data);
    let (state, deleted_at) = state_of(meta.destroyed, &meta.deletion_time, now);
    if state != KeyState::Enabled {
        return Ok(None);
    }
    let material = key_of(&data, field, secret, meta.version)?;
    Ok(Some(key_version(
        meta.version,
        material,
        state,
        &meta.created_time,
        deleted_at,
    )))
}

pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    if text.is_empty() {
        return None;
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use keyroll_core::ProviderErrorKind;
    use serde_json::{Value, json};

    use super::*;

    const KEY: &str = "s3cr3t-value-0123456789abcdef";

    /// A data-path answer for version 7 created at 2026-01-02T03:04:05Z.
    fn answer(data: Value, deletion_time: &str, destroyed: bool) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "data": data,
            "metadata": {
                "created_time": "2026-01-02T03:04:05.123456Z",
                "custom_metadata": null,
                "deletion_time": deletion_time,
                "destroyed": destroyed,
                "version": 7
            }
        }))
        .unwrap()
    }

    fn parse(json: &[u8], field: &str) -> Result<Option<KeyVersion>, ProviderError> {
        parse_read_response(json, field, UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    }

    #[test]
    fn an_answer_gives_the_version_number_creation_time_and_key() {
        let version = parse(&answer(json!({"key": KEY, "other": "x"}), "", false), "key")
            .unwrap()
            .unwrap();
        assert_eq!(version.id, "7");
        assert_eq!(version.state, KeyState::Enabled);
        assert_eq!(version.material.expose_secret(), KEY.as_bytes());
        assert_eq!(
            version.created,
            Some(UNIX_EPOCH + Duration::new(1_767_323_045, 123_456_000))
        );
        assert_eq!(version.expires, None);
    }

    #[test]
    fn a_deletion_ahead_expires_the_version_and_a_past_one_or_destruction_hides_it() {
        let ahead = "2030-01-01T00:00:00Z";
        let version = parse(&answer(json!({"key": KEY}), ahead, false), "key")
            .unwrap()
            .unwrap();
        assert_eq!(version.expires, parse_time(ahead));
        for (deletion, destroyed) in [("2026-02-01T00:00:00Z", false), ("", true)] {
            assert!(
                parse(&answer(Value::Null, deletion, destroyed), "key")
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn bad_fields_are_invalid_and_errors_never_show_values() {
        for (data, field) in [
            (json!({"key": KEY, "neighbour": "hidden-neighbour"}), "missing"),
            (json!({"key": 42, "neighbour": "hidden-neighbour"}), "key"),
            (json!({"key": ""}), "key"),
            (json!([KEY]), "key"),
            (Value::Null, "key"),
        ] {
            let error = parse(&answer(data, "", false), field).unwrap_err();
            assert_eq!(error.kind(), ProviderErrorKind::Invalid);
            let shown = format!("{error} {error:?}");
            assert!(
                !shown.contains("s3cr3t") && !shown.contains("hidden-neighbour"),
                "{shown}"
            );
        }
        let error = parse(format!("{{\"data\": {{\"key\": \"{KEY}\"").as_bytes(), "key").unwrap_err();
        assert!(!format!("{error} {error:?}").contains("s3cr3t"));
    }
}
