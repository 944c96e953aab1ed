//! Settings of a [`GcpProvider`].

use keyroll_core::ProviderError;
use keyroll_core::remote::{Connection, ConnectionDefaults};

use crate::{DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, GcpProvider, SecretName};

/// Settings for a [`GcpProvider`]: the secret, and optionally the endpoint
/// (default: the secret's global or regional endpoint), attempts and
/// timeouts. Credentials are Application Default Credentials; an `http://`
/// endpoint (a local server) is spoken to anonymously.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GcpProviderBuilder {
    secret: Option<String>,
    connection: Connection,
}

impl GcpProviderBuilder {
    keyroll_core::option_setters! {
        /// The secret: its full resource name, `projects/P/secrets/S` or
        /// `projects/P/locations/L/secrets/S` (see [`SecretName::parse`]).
        secret: impl String,
    }

    keyroll_core::connection_setters!(endpoint, allow_insecure_http, attempt_timeout, max_attempts);

    /// Builds the provider. Nothing is sent yet: the client is set up by the
    /// first [`fetch`](keyroll_core::KeyProvider::fetch).
    ///
    /// # Errors
    /// [`Config`](keyroll_core::ProviderErrorKind::Config) when the secret
    /// name is missing or malformed, the endpoint fails the
    /// [endpoint check](keyroll_core::remote::Endpoint::check), the attempts
    /// or the timeout are 0.
    pub fn build(self) -> Result<GcpProvider, ProviderError> {
        let secret = SecretName::parse(self.secret.as_deref().unwrap_or_default())?;
        let connection = self.connection.check(
            "GCP Secret Manager",
            "the requests",
            ConnectionDefaults {
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                max_attempts: DEFAULT_MAX_ATTEMPTS,
            },
        )?;
        Ok(GcpProvider::new(secret, connection))
    }
}
