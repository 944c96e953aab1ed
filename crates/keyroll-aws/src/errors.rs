//! AWS SDK errors to [`ProviderError`]s that say what to do.

use std::error::Error as StdError;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use keyroll_core::{ProviderError, ProviderErrorKind};

/// Translates a failed `operation` on `secret` into a provider error.
///
/// Service errors are matched by code first and by HTTP status where the
/// code is missing (moto answers IAM denials of JSON APIs with an XML body).
/// Connection failures, timeouts and 5xx are [`Unavailable`](ProviderErrorKind::Unavailable).
pub(crate) fn provider_error<E>(operation: &str, secret: &str, error: &SdkError<E>) -> ProviderError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let (kind, detail) = match error {
        // The answer came but could not be read (a garbled or cut body):
        // a store fault to retry, never a configuration error.
        SdkError::ResponseError(_) => (
            ProviderErrorKind::Invalid,
            format!(
                "malformed answer (HTTP {})",
                status_of(error).map_or_else(|| "status unknown".to_owned(), |s| s.to_string())
            ),
        ),
        SdkError::ServiceError(_) => {
            let status = status_of(error);
            let code = error.code().unwrap_or_default().to_owned();
            let message = error.message().unwrap_or_default().to_owned();
            // A success status without an error code: the answer came but
            // could not be read (garbled or cut), a store fault to retry.
            let unreadable = code.is_empty() && status.is_some_and(|s| (200..300).contains(&s));
            let kind = if unreadable {
                ProviderErrorKind::Invalid
            } else {
                kind_of(&code, status)
            };
            let what = if unreadable {
                format!("malformed answer (HTTP {})", status.unwrap_or_default())
            } else if code.is_empty() {
                format!(
                    "HTTP {}",
                    status.map_or_else(|| "error".to_owned(), |s| s.to_string())
                )
            } else {
                code
            };
            let detail = if message.is_empty() {
                what
            } else {
                format!("{what}: {message}")
            };
            (kind, detail)
        }
        SdkError::DispatchFailure(failure) => (
            ProviderErrorKind::Unavailable,
            format!(
                "cannot reach the endpoint ({})",
                if failure.is_timeout() {
                    "connect timeout"
                } else if failure.is_io() {
                    "connection failed"
                } else {
                    "dispatch failure"
                }
            ),
        ),
        SdkError::TimeoutError(_) => (ProviderErrorKind::Unavailable, "no answer in time".to_owned()),
        SdkError::ConstructionFailure(_) => (
            ProviderErrorKind::Config,
            "the request could not be built (check region and endpoint)".to_owned(),
        ),
        _ => (ProviderErrorKind::Unavailable, "request failed".to_owned()),
    };
    let hint = match kind {
        ProviderErrorKind::NotFound => {
            "; check the secret name or ARN and the region (`?region=`, AWS_REGION)"
        }
        ProviderErrorKind::PermissionDenied => {
            "; the credentials need secretsmanager:DescribeSecret, ListSecretVersionIds and GetSecretValue \
             (and kms:Decrypt for a customer-managed key) on this secret"
        }
        ProviderErrorKind::Unavailable => "; keeping the last good keys and retrying",
        _ => "",
    };
    // The SDK error is not kept as the source: its raw response derives
    // `Debug` and prints a body read in full, which for a `GetSecretValue`
    // that could not be parsed is the secret itself.
    ProviderError::new(
        kind,
        format!("{operation} of AWS secret `{secret}` failed: {detail}{hint}"),
    )
}

fn status_of<E>(error: &SdkError<E>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

fn kind_of(code: &str, status: Option<u16>) -> ProviderErrorKind {
    match code {
        "ResourceNotFoundException" => ProviderErrorKind::NotFound,
        // PutSecretValue with a ClientRequestToken already used for another value.
        "ResourceExistsException" => ProviderErrorKind::Conflict,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "DecryptionFailure" => ProviderErrorKind::PermissionDenied,
        "ThrottlingException"
        | "InternalServiceError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "RequestTimeout" => ProviderErrorKind::Unavailable,
        // InvalidParameterException, InvalidRequestException (a secret scheduled
        // for deletion), …: 400, retrying will not help.
        _ => status.map_or(ProviderErrorKind::Config, ProviderErrorKind::from_http_status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        let cases = [
            (
                "ResourceNotFoundException",
                Some(400),
                ProviderErrorKind::NotFound,
            ),
            (
                "AccessDeniedException",
                Some(400),
                ProviderErrorKind::PermissionDenied,
            ),
            (
                "UnrecognizedClientException",
                Some(400),
                ProviderErrorKind::PermissionDenied,
            ),
            ("", Some(403), ProviderErrorKind::PermissionDenied),
            ("ThrottlingException", Some(400), ProviderErrorKind::Unavailable),
            ("", Some(503), ProviderErrorKind::Unavailable),
            ("InternalServiceError", Some(500), ProviderErrorKind::Unavailable),
            ("InvalidRequestException", Some(400), ProviderErrorKind::Config),
        ];
        for (code, status, kind) in cases {
            assert_eq!(kind_of(code, status), kind, "{code} / {status:?}");
        }
    }
}
