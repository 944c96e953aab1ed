//! Settings of a [`VaultProvider`], and the client they make.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyroll_core::remote::{Connection, ConnectionDefaults, INSECURE_HTTP};
use keyroll_core::{FromSource, KeySource, ProviderError};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use crate::auth::{Auth, Session};
use crate::provider::Secret;
use crate::{DEFAULT_METADATA_EVERY, VaultProvider};

/// Default timeout of one request: short, so a dead or hung server is
/// reported within seconds and the refresher keeps the last good keys. Each
/// request is made once (a rejected token is renewed and the request made
/// again); the refresher's backoff retries the fetch.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for a [`VaultProvider`]. Unset settings follow the conventions of
/// the vault CLI: `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VaultProviderBuilder {
    /// The address (`https://host:port`, or `http://` for dev servers;
    /// default `VAULT_ADDR`), the attempt timeout (default
    /// [`DEFAULT_ATTEMPT_TIMEOUT`]) and whether plain `http://` may go to
    /// a host other than this machine.
    pub(crate) connection: Connection,
    /// The KV v2 mount, such as `secret`.
    pub(crate) mount: Option<String>,
    /// The secret's path inside the mount, such as `myapp/signing`.
    pub(crate) path: Option<String>,
    /// The field holding the key. Default `key`.
    pub(crate) field: Option<String>,
    /// The Vault namespace (`X-Vault-Namespace`). Default `VAULT_NAMESPACE`.
    pub(crate) namespace: Option<String>,
    /// A PEM CA bundle to trust for HTTPS. Default `VAULT_CACERT`.
    pub(crate) ca_cert: Option<PathBuf>,
    /// How to authenticate. Default: token from `VAULT_TOKEN` (or `~/.vault-token`).
    pub(crate) auth: Option<Auth>,
    /// How many enabled versions to report at most. Default: the policy's number.
    pub(crate) max_versions: Option<usize>,
    /// Read the metadata at least every this many fetches. Default [`DEFAULT_METADATA_EVERY`].
    pub(crate) metadata_every: Option<u32>,
}

impl VaultProviderBuilder {
    /// Sets the server address, `https://host:port` or `http://host:port`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.connection.endpoint = Some(address.into());
        self
    }

    keyroll_core::option_setters! {
        /// Sets the field that holds the key (default `key`).
        field: impl String,
        /// Sets the namespace sent as `X-Vault-Namespace`.
        namespace: impl String,
        /// Trusts the CA certificates in the PEM file at `path` for HTTPS.
        ca_cert: impl PathBuf,
        /// Sets how to authenticate.
        auth: Auth,
        /// Sets how many enabled versions a fetch reports at most (at least 1).
        /// Default: as many as the policy in use can use (the number
        /// [`KeyProvider::fetch_newest`](keyroll_core::KeyProvider::fetch_newest) is given).
        max_versions: usize,
        /// Reads the secret's metadata at least every `fetches` fetches (at
        /// least 1; 1 reads it on every fetch). The fetches in between read only
        /// the newest version, so they notice a new version at once but a version
        /// deleted, destroyed or undeleted in the store only at the next metadata
        /// read. See [`DEFAULT_METADATA_EVERY`].
        metadata_every: u32,
    }

    keyroll_core::connection_setters!(allow_insecure_http, attempt_timeout);

    /// Sets the KV v2 mount and the secret's path inside it.
    pub fn secret(mut self, mount: impl Into<String>, path: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self.path = Some(path.into());
        self
    }

    /// Builds the provider. Nothing is sent to Vault yet: the first
    /// [`fetch`](keyroll_core::KeyProvider::fetch) logs in.
    ///
    /// # Errors
    /// [`Config`](keyroll_core::ProviderErrorKind::Config) when the address,
    /// mount or path is missing or malformed, or the CA file cannot be read.
    pub fn build(self) -> Result<VaultProvider, ProviderError> {
        let mut connection = self.connection;
        connection.endpoint = connection.endpoint.or_else(|| non_empty_env("VAULT_ADDR"));
        let connection = connection.check(
            "Vault",
            "the Vault token",
            ConnectionDefaults {
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                max_attempts: 1,
            },
        )?;
        let Some(address) = connection.endpoint.map(|e| e.url().to_owned()) else {
            return Err(ProviderError::config(
                "no Vault address: give one (vault://HOST:PORT/MOUNT/PATH, or the builder's address) or set VAULT_ADDR",
            ));
        };
        let mount = self.mount.unwrap_or_default().trim_matches('/').to_owned();
        let path = self.path.unwrap_or_default().trim_matches('/').to_owned();
        if mount.is_empty() || path.is_empty() {
            return Err(ProviderError::config(
                "a Vault secret needs a mount and a path, such as vault://HOST:PORT/secret/myapp",
            ));
        }
        let field = self.field.unwrap_or_else(|| "key".to_owned());
        let namespace = self.namespace.or_else(|| non_empty_env("VAULT_NAMESPACE"));
        let ca_cert = self
            .ca_cert
            .or_else(|| non_empty_env("VAULT_CACERT").map(PathBuf::from));
        let max_versions = self.max_versions;
        if max_versions == Some(0) {
            return Err(ProviderError::config("max_versions must be at least 1"));
        }
        let metadata_every = self.metadata_every.unwrap_or(DEFAULT_METADATA_EVERY);
        if metadata_every == 0 {
            return Err(ProviderError::config("metadata_every must be at least 1"));
        }
        let auth = self.auth.unwrap_or_else(Auth::default_token);

        // vaultrs' rustls has no crypto provider of its own here (see Cargo.toml);
        // an application that installed one keeps it.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(url_checked(&address)?)
            .token("")
            .timeout(Some(connection.attempt_timeout))
            .verify(true)
            .namespace(namespace.clone())
            .ca_certs(
                ca_cert
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>(),
            );
        let settings = settings
            .build()
            .map_err(|e| ProviderError::config(format!("invalid Vault client settings: {e}")))?;
        let client = VaultClient::new(settings).map_err(|e| {
            ProviderError::config(format!(
                "cannot set up the Vault client for {}: {e}{}",
                keyroll_core::remote::redact_userinfo(&address),
                ca_cert
                    .as_ref()
                    .map(|p| format!(" (CA bundle {})", p.display()))
                    .unwrap_or_default()
            ))
        })?;

        let (authority, tls) = match address.strip_prefix("http://") {
            Some(rest) => (rest, false),
            None => (address.trim_start_matches("https://"), true),
        };
        let mut params = vec![("field", field.as_str())];
        if !tls {
            params.push(("tls", "false"));
        }
        if let Some(namespace) = &namespace {
            params.push(("namespace", namespace));
        }
        if connection.allow_insecure_http {
            params.push((INSECURE_HTTP, "true"));
        }
        let display = KeySource::format(
            <VaultProvider as FromSource>::SCHEME,
            authority,
            &format!("/{mount}/{path}"),
            &params,
        );
        Ok(VaultProvider::new(
            Session::new(auth, Arc::new(client)),
            Secret { mount, path, field },
            max_versions,
            metadata_every,
            display,
        ))
    }
}

/// Validates the address before vaultrs' builder, which panics on bad URLs:
/// it must parse as a URL the same way vaultrs parses it (found by the
/// `key_source` fuzz target: `vault://127L0.0.1:8200/...` panicked).
fn url_checked(address: &str) -> Result<&str, ProviderError> {
    let rest = address.split_once("://").map_or("", |(_, rest)| rest);
    if rest.is_empty()
        || rest.contains(char::is_whitespace)
        || rest.starts_with('/')
        || url::Url::parse(address).is_err()
    {
        return Err(ProviderError::config(format!(
            "Vault address `{address}` is not a valid URL"
        )));
    }
    Ok(address)
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
