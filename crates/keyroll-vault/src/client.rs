//! The HTTP connection to Vault, and how its failures become [`ProviderError`]s.

use std::error::Error as _;
use std::sync::Arc;

use keyroll_core::{ProviderError, ProviderErrorKind};
use rustify::clients::reqwest::Client as HttpClient;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{Client, VaultClient, VaultClientSettings};
use vaultrs::error::ClientError;

/// One request's view of the shared connection: the connection (TLS, address,
/// namespace, timeout) plus the token to send. Building one costs a clone of
/// the token, so the token can change between requests without locks held
/// across them.
pub(crate) struct Authed {
    connection: Arc<VaultClient>,
    middle: EndpointMiddleware,
}

impl Authed {
    /// A request context sending `token` (none when empty, for logins).
    pub(crate) fn new(connection: &Arc<VaultClient>, token: &str) -> Self {
        let mut middle = connection.middle.clone();
        middle.token = token.to_owned();
        Self {
            connection: Arc::clone(connection),
            middle,
        }
    }
}

impl Client for Authed {
    fn http(&self) -> &HttpClient {
        &self.connection.http
    }

    fn middle(&self) -> &EndpointMiddleware {
        &self.middle
    }

    fn settings(&self) -> &VaultClientSettings {
        &self.connection.settings
    }

    fn set_token(&mut self, token: &str) {
        self.middle.token = token.to_owned();
    }
}

/// The HTTP status Vault answered with, if it answered with an error status.
pub(crate) fn status_of(error: &ClientError) -> Option<u16> {
    match error {
        ClientError::APIError { code, .. } => Some(*code),
        ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError { code, .. },
        } => Some(*code),
        _ => None,
    }
}

/// Turns a vaultrs failure of `what` (such as "reading secret/app") into a
/// provider error with a kind to match on and a message that says what to do.
///
/// The vaultrs error is never attached as source: some of its variants carry
/// the raw response body, which for a KV read is the secret itself.
pub(crate) fn provider_error(what: &str, error: &ClientError) -> ProviderError {
    if let Some(code) = status_of(error) {
        let detail = match error {
            ClientError::APIError { errors, .. } if !errors.is_empty() => format!(": {}", api_errors(errors)),
            _ => String::new(),
        };
        return match ProviderErrorKind::from_http_status(code) {
            ProviderErrorKind::PermissionDenied => ProviderError::permission_denied(format!(
                "Vault refused {what} (403{detail}); the token's policy must grant `read` on the secret's \
                 data/ and metadata/ paths (and `create`/`update` on data/ for keyroll rotate), \
                 or the token has expired"
            )),
            ProviderErrorKind::NotFound => ProviderError::not_found(format!(
                "Vault has nothing at {what} (404{detail}); check the mount and path, and that the mount is KV version 2"
            )),
            ProviderErrorKind::Unavailable => ProviderError::unavailable(format!(
                "Vault failed {what} (HTTP {code}{detail}); it may be sealed, overloaded or restarting"
            )),
            kind => ProviderError::new(kind, format!("Vault rejected {what} (HTTP {code}{detail})")),
        };
    }
    match error {
        ClientError::RestClientError { source } => match source {
            rustify::errors::ClientError::RequestError { .. }
            | rustify::errors::ClientError::ResponseError { .. } => {
                let causes = cause_chain(source);
                // rustls reading an HTTP answer as a TLS record.
                if causes.contains("InvalidContentType") {
                    return ProviderError::unavailable(format!(
                        "cannot reach Vault for {what}: the server speaks plain HTTP, not HTTPS (as a dev server \
                         does); add ?tls=false to the URI, e.g. vault://127.0.0.1:8200/secret/myapp?tls=false"
                    ));
                }
                ProviderError::unavailable(format!(
                    "cannot reach Vault for {what}: {causes}; check the address and that the server is up"
                ))
            }
            // Parse errors may quote the response body, which may be the secret: no detail.
            rustify::errors::ClientError::ResponseParseError { .. }
            | rustify::errors::ClientError::ResponseConversionError { .. }
            | rustify::errors::ClientError::DataParseError { .. } => ProviderError::invalid(format!(
                "Vault's answer to {what} is not a KV v2 response; is the mount a KV version 2 engine?"
            )),
            other => ProviderError::invalid(format!("{what} failed: {other}")),
        },
        ClientError::ResponseDataEmptyError
        | ClientError::ResponseEmptyError
        | ClientError::JsonParseError { .. } => ProviderError::invalid(format!(
            "Vault's answer to {what} is not what the KV v2 API returns; is the mount a KV version 2 engine?"
        )),
        other => ProviderError::new(ProviderErrorKind::Invalid, format!("{what} failed: {other}")),
    }
}

/// Vault's `errors` list on one short line: each entry is often a multi-line
/// report ("1 error occurred:\n\t* permission denied\n\n"), reduced to its
/// items; the whole is cut at 300 characters.
pub(crate) fn api_errors(errors: &[String]) -> String {
    const MAX: usize = 300;
    let items: Vec<String> = errors
        .iter()
        .flat_map(|error| error.lines())
        .map(|line| line.trim().trim_start_matches("* ").trim())
        // Vault's (go-multierror's) header line: "2 errors occurred:".
        .filter(|line| !line.is_empty() && !is_error_count(line))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let text = items.join("; ");
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn is_error_count(line: &str) -> bool {
    line.ends_with("occurred:") && line.contains(" error")
}

/// The messages of an error and its causes, joined, for errors known not to
/// carry response bodies (connection failures, timeouts).
fn cause_chain(error: &rustify::errors::ClientError) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::api_errors;

    #[test]
    fn vault_error_reports_become_one_short_line() {
        let errors = vec!["1 error occurred:\n\t* permission denied\n\n".to_owned()];
        assert_eq!(api_errors(&errors), "permission denied");
        let errors = vec![
            "2 errors occurred:\n\t* no handler for route\n\t* route   entry not found\n\n".to_owned(),
            "invalid token".to_owned(),
        ];
        assert_eq!(
            api_errors(&errors),
            "no handler for route; route entry not found; invalid token"
        );
        let long = vec!["x".repeat(1000)];
        assert_eq!(api_errors(&long).chars().count(), 301);
    }
}
