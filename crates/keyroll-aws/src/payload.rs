//! What one `GetSecretValue` answer holds: the key of a version (the whole
//! secret string or binary, or one field of a JSON secret string) and its
//! creation date. Pure functions, shared by the provider and the fuzz targets.

use std::time::SystemTime;

use aws_sdk_secretsmanager::primitives::DateTime;
use keyroll_core::remote::{FieldProblem, JsonSecret};
use keyroll_core::{KeyMaterial, ProviderError};

pub(crate) fn system_time(at: &DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*at).ok()
}

/// The key in one version of secret `secret` (`GetSecretValue`'s
/// `SecretString` and `SecretBinary`): without a `field`, the whole secret
/// string (preferred, as AWS sends one or the other) or binary; with one, that
/// field of a JSON object secret string. Empty keys are refused. Errors name
/// the secret, the version and the field, never the contents.
pub(crate) fn material_of(
    secret: &str,
    version_id: &str,
    field: Option<&str>,
    string: Option<&str>,
    binary: Option<&[u8]>,
) -> Result<KeyMaterial, ProviderError> {
    let material = match (field, string, binary) {
        (None, Some(string), _) => KeyMaterial::new(string.as_bytes()),
        (None, None, Some(bytes)) => KeyMaterial::new(bytes),
        (Some(field), Some(string), _) => json_field(string, field).map_err(|problem| {
            ProviderError::invalid(format!(
                "version {version_id} of AWS secret `{secret}`: {problem}; fix the secret or the `field` parameter"
            ))
        })?,
        (Some(field), None, Some(_)) => {
            return Err(ProviderError::invalid(format!(
                "version {version_id} of AWS secret `{secret}` is a SecretBinary, which has no field `{field}`; \
                 leave `field` out to use the binary as the key"
            )));
        }
        (_, None, None) => {
            return Err(ProviderError::invalid(format!(
                "version {version_id} of AWS secret `{secret}` has neither SecretString nor SecretBinary"
            )));
        }
    };
    if material.is_empty() {
        return Err(ProviderError::invalid(format!(
            "version {version_id} of AWS secret `{secret}` is empty"
        )));
    }
    Ok(material)
}

/// The string in `field` of the JSON object `text` (the core's
/// [`JsonSecret`], which wipes the parsed copy).
pub(crate) fn json_field(text: &str, field: &str) -> Result<KeyMaterial, String> {
    JsonSecret::parse(text)
        .and_then(|secret| secret.field(field))
        .map_err(|problem| match problem {
            FieldProblem::Missing { .. } | FieldProblem::NotString { .. } => {
                format!("the JSON object {problem}")
            }
            _ => format!("the secret string {problem}"),
        })
}

#[cfg(test)]
mod tests {
    use keyroll_core::ProviderErrorKind;

    use super::*;

    #[test]
    fn a_version_is_its_secret_string_else_its_binary_and_never_empty() {
        let read = |field, string, binary| material_of("app", "v1", field, string, binary);
        let string = "s3cr3t-string-0123456789";
        let binary: &[u8] = b"s3cr3t-binary-\xff\x00";
        assert_eq!(
            read(None, Some(string), Some(binary)).unwrap().expose_secret(),
            string.as_bytes(),
            "the string wins when both are sent"
        );
        assert_eq!(read(None, None, Some(binary)).unwrap().expose_secret(), binary);
        for (string, binary) in [(Some(""), None), (None, Some(&b""[..])), (Some(""), Some(binary))] {
            let error = read(None, string, binary).unwrap_err();
            assert_eq!(error.kind(), ProviderErrorKind::Invalid);
            assert!(error.to_string().contains("is empty"), "{error}");
        }
        let error = read(None, None, None).unwrap_err();
        assert_eq!(error.kind(), ProviderErrorKind::Invalid);
        assert!(
            error
                .to_string()
                .contains("neither SecretString nor SecretBinary"),
            "{error}"
        );
    }

    #[test]
    fn a_field_is_read_from_the_string_only_and_errors_name_version_and_field_not_values() {
        let read = |string, binary| material_of("app", "v1", Some("key"), string, binary);
        let secret = r#"{"key":"s3cr3t-value-0123456789abcdef","other":"hidden-neighbour"}"#;
        assert_eq!(
            read(Some(secret), None).unwrap().expose_secret(),
            b"s3cr3t-value-0123456789abcdef"
        );
        let binary: &[u8] = b"s3cr3t-binary-0123456789";
        let error = read(None, Some(binary)).unwrap_err();
        assert_eq!(error.kind(), ProviderErrorKind::Invalid);
        assert!(
            error
                .to_string()
                .contains("SecretBinary, which has no field `key`"),
            "{error}"
        );
        for text in [
            r#"{"key":""}"#,
            r#"{"key":7,"x":"s3cr3t-value"}"#,
            "s3cr3t-value-not-json",
        ] {
            let error = read(Some(text), None).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert_eq!(error.kind(), ProviderErrorKind::Invalid, "{shown}");
            assert!(shown.contains("version v1 of AWS secret `app`"), "{shown}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }

    #[test]
    fn json_fields_must_be_strings_and_errors_never_show_values() {
        let secret = r#"{"key":"s3cr3t-value-0123456789abcdef","n":42,"other":"hidden-neighbour"}"#;
        assert_eq!(
            json_field(secret, "key").unwrap().expose_secret(),
            b"s3cr3t-value-0123456789abcdef"
        );
        for (text, field) in [
            (secret, "missing"),
            (secret, "n"),
            (r#"["s3cr3t-value-0123456789abcdef"]"#, "key"),
            ("s3cr3t-value-0123456789abcdef", "key"),
        ] {
            let problem = json_field(text, field).unwrap_err();
            assert!(!problem.contains("s3cr3t"), "{problem}");
            assert!(!problem.contains("hidden-neighbour"), "{problem}");
        }
    }
}
