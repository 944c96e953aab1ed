//! The provider: KV v2 versions in, key versions out.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use keyroll_core::{
    DEFAULT_MAX_FALLBACKS, KeyMaterial, KeyProvider, KeySource, KeyState, KeyVersion, ProviderError,
    Published, Reach, async_trait,
};
use serde_json::{Map, Value};
use vaultrs::api::kv2::requests::SetSecretRequestOptions;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroize;

use crate::auth::{Auth, Session};
use crate::client::{Authed, provider_error, status_of};

/// How many enabled versions a fetch reports by default: the one that signs,
/// one pending, and the policy's default number of fallbacks.
pub const DEFAULT_MAX_VERSIONS: usize = DEFAULT_MAX_FALLBACKS + 2;

/// Default per-request timeout: short, so a dead or hung server is reported
/// within seconds and the refresher keeps the last good keys.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the versions of one KV v2 secret from Vault or OpenBao.
///
/// Build one with [`VaultProvider::builder`] or from a URI with
/// [`VaultProvider::from_source`]. Cloning is cheap and clones share the
/// token and the cache of versions already read.
#[derive(Clone)]
pub struct VaultProvider {
    inner: Arc<Inner>,
}

struct Inner {
    session: Arc<Session>,
    mount: String,
    path: String,
    field: String,
    max_versions: usize,
    /// What `source()` shows: the address, mount, path and field, no credentials.
    display: String,
    /// Materials already read, by version number and creation time (a
    /// re-created secret restarts its version numbers; the creation time tells
    /// the new version 1 from the old one).
    held: Mutex<HashMap<(u64, String), KeyMaterial>>,
}

/// Settings for a [`VaultProvider`]. Unset settings follow the conventions of
/// the vault CLI: `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VaultProviderBuilder {
    /// `https://host:port` (or `http://` for dev servers). Default `VAULT_ADDR`.
    pub address: Option<String>,
    /// The KV v2 mount, such as `secret`.
    pub mount: Option<String>,
    /// The secret's path inside the mount, such as `myapp/signing`.
    pub path: Option<String>,
    /// The field holding the key. Default `key`.
    pub field: Option<String>,
    /// The Vault namespace (`X-Vault-Namespace`). Default `VAULT_NAMESPACE`.
    pub namespace: Option<String>,
    /// A PEM CA bundle to trust for HTTPS. Default `VAULT_CACERT`.
    pub ca_cert: Option<PathBuf>,
    /// How to authenticate. Default: token from `VAULT_TOKEN` (or `~/.vault-token`).
    pub auth: Option<Auth>,
    /// Per-request timeout. Default [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// How many enabled versions to report at most. Default [`DEFAULT_MAX_VERSIONS`].
    pub max_versions: Option<usize>,
}

impl VaultProviderBuilder {
    /// Sets the server address, `https://host:port` or `http://host:port`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the KV v2 mount and the secret's path inside it.
    pub fn secret(mut self, mount: impl Into<String>, path: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self.path = Some(path.into());
        self
    }

    /// Sets the field that holds the key (default `key`).
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Sets the namespace sent as `X-Vault-Namespace`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Trusts the CA certificates in the PEM file at `path` for HTTPS.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// Sets how to authenticate.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sets the per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how many enabled versions a fetch reports at most (at least 1).
    pub fn max_versions(mut self, max: usize) -> Self {
        self.max_versions = Some(max);
        self
    }

    /// Builds the provider. Nothing is sent to Vault yet: the first
    /// [`fetch`](KeyProvider::fetch) logs in.
    ///
    /// # Errors
    /// [`Config`](keyroll_core::ProviderErrorKind::Config) when the address,
    /// mount or path is missing or malformed, or the CA file cannot be read.
    pub fn build(self) -> Result<VaultProvider, ProviderError> {
        let address = match self.address.or_else(|| non_empty_env("VAULT_ADDR")) {
            Some(address) => address.trim_end_matches('/').to_owned(),
            None => {
                return Err(ProviderError::config(
                    "no Vault address: give one (vault://HOST:PORT/MOUNT/PATH, or the builder's address) or set VAULT_ADDR",
                ));
            }
        };
        if !(address.starts_with("https://") || address.starts_with("http://")) {
            return Err(ProviderError::config(format!(
                "Vault address `{address}` must start with https:// (or http:// for a dev server)"
            )));
        }
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
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let max_versions = self.max_versions.unwrap_or(DEFAULT_MAX_VERSIONS);
        if max_versions == 0 {
            return Err(ProviderError::config("max_versions must be at least 1"));
        }
        let auth = self.auth.unwrap_or_else(Auth::default_token);

        // vaultrs' rustls has no crypto provider of its own here (see Cargo.toml);
        // an application that installed one keeps it.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(url_checked(&address)?)
            .token("")
            .timeout(Some(timeout))
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
        let connection = VaultClient::new(settings).map_err(|e| {
            ProviderError::config(format!(
                "cannot set up the Vault client for {address}: {e}{}",
                ca_cert
                    .as_ref()
                    .map(|p| format!(" (CA bundle {})", p.display()))
                    .unwrap_or_default()
            ))
        })?;

        let mut display = format!(
            "vault://{}/{mount}/{path}?field={field}",
            address
                .trim_start_matches("https://")
                .trim_start_matches("http://")
        );
        if address.starts_with("http://") {
            display.push_str("&tls=false");
        }
        if let Some(namespace) = &namespace {
            display.push_str(&format!("&namespace={namespace}"));
        }
        Ok(VaultProvider {
            inner: Arc::new(Inner {
                session: Arc::new(Session::new(auth, Arc::new(connection))),
                mount,
                path,
                field,
                max_versions,
                display,
                held: Mutex::new(HashMap::new()),
            }),
        })
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

impl VaultProvider {
    /// Settings for a provider; see [`VaultProviderBuilder`].
    pub fn builder() -> VaultProviderBuilder {
        VaultProviderBuilder::default()
    }

    /// Builds a provider from `vault://HOST:PORT/MOUNT/PATH?field=key` and the
    /// other parameters listed in the [crate docs](crate).
    ///
    /// ```
    /// use keyroll_core::{KeyProvider, KeySource};
    /// use keyroll_vault::VaultProvider;
    ///
    /// let source = KeySource::parse("vault://127.0.0.1:8200/secret/myapp?field=signing&tls=false")?;
    /// let provider = VaultProvider::from_source(&source)?;
    /// assert_eq!(provider.source(), "vault://127.0.0.1:8200/secret/myapp?field=signing&tls=false");
    /// # Ok::<(), keyroll_core::ProviderError>(())
    /// ```
    ///
    /// # Errors
    /// [`Config`](keyroll_core::ProviderErrorKind::Config) for a malformed URI,
    /// an unknown parameter or a missing address.
    pub fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        crate::uri::builder_from_source(source)?.build()
    }

    fn what(&self, action: &str) -> String {
        format!("{action} {}/{}", self.inner.mount, self.inner.path)
    }

    /// Runs one Vault request with a valid token; on 403 gets a new token
    /// once (a fresh login, a changed token file) and retries.
    async fn call<T, F, Fut>(&self, what: &str, request: F) -> Result<T, ClientErrorOr>
    where
        F: Fn(Authed) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let session = &self.inner.session;
        let token = session.token().await.map_err(ClientErrorOr::Provider)?;
        match request(Authed::new(session.connection(), &token)).await {
            Err(error) if status_of(&error) == Some(403) => {
                if session
                    .replace_rejected(&token)
                    .await
                    .map_err(ClientErrorOr::Provider)?
                {
                    let token = session.token().await.map_err(ClientErrorOr::Provider)?;
                    request(Authed::new(session.connection(), &token))
                        .await
                        .map_err(|e| ClientErrorOr::Client(what.to_owned(), e))
                } else {
                    Err(ClientErrorOr::Client(what.to_owned(), error))
                }
            }
            other => other.map_err(|e| ClientErrorOr::Client(what.to_owned(), e)),
        }
    }

    /// Reads one version's field.
    async fn read_version(&self, version: u64) -> Result<Option<KeyMaterial>, ProviderError> {
        let inner = &self.inner;
        let what = self.what(&format!("reading version {version} of"));
        let data = self
            .call(&what, |client| async move {
                vaultrs::kv2::read_version::<Map<String, Value>>(&client, &inner.mount, &inner.path, version)
                    .await
            })
            .await;
        let data = match data {
            Ok(data) => data,
            // Deleted between the metadata read and this one: report it as such.
            Err(ClientErrorOr::Client(_, ref error)) if status_of(error) == Some(404) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let data = Fields(data);
        match data.0.get(&inner.field) {
            Some(Value::String(text)) if !text.is_empty() => Ok(Some(KeyMaterial::from(text.as_str()))),
            Some(Value::String(_)) => Err(ProviderError::invalid(format!(
                "version {version} of {}/{} has an empty field `{}`",
                inner.mount, inner.path, inner.field
            ))),
            Some(_) => Err(ProviderError::invalid(format!(
                "field `{}` of version {version} of {}/{} is not a string",
                inner.field, inner.mount, inner.path
            ))),
            None => Err(ProviderError::invalid(format!(
                "version {version} of {}/{} has no field `{}` (fields: {}); set the field with ?field=NAME",
                inner.mount,
                inner.path,
                inner.field,
                data.0.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Writes `material` as the version right after `expected` (0: the secret
    /// must not exist yet), keeping the other fields of version `expected`.
    /// Vault's check-and-set makes this a compare-and-swap: when the newest
    /// version is no longer `expected`, nothing is written and the error
    /// ([`Unavailable`](keyroll_core::ProviderErrorKind::Unavailable), a
    /// conflict that re-reading resolves) says someone else rotated.
    /// [`KeyProvider::rotate`] calls this with the version current when it
    /// starts.
    ///
    /// # Errors
    /// The conflict above; [`Invalid`](keyroll_core::ProviderErrorKind::Invalid)
    /// when the material is not UTF-8 (Vault KV stores text); what Vault
    /// answers otherwise (permission denied without `create`/`update` rights).
    pub async fn publish_after(
        &self,
        material: &KeyMaterial,
        expected: u64,
    ) -> Result<Published, ProviderError> {
        let inner = &self.inner;
        let text = std::str::from_utf8(material.expose_secret()).map_err(|_| {
            ProviderError::invalid(
                "Vault KV stores text; the new key must be UTF-8 (keys from keyroll generate are)",
            )
        })?;
        // Keep the other fields of the version being superseded, if it can be read.
        let mut data = if expected == 0 {
            Map::new()
        } else {
            let what = self.what(&format!("reading version {expected} of"));
            match self
                .call(&what, |client| async move {
                    vaultrs::kv2::read_version::<Map<String, Value>>(
                        &client,
                        &inner.mount,
                        &inner.path,
                        expected,
                    )
                    .await
                })
                .await
            {
                Ok(data) => data,
                Err(ClientErrorOr::Client(_, ref error)) if status_of(error) == Some(404) => Map::new(),
                Err(error) => return Err(error.into()),
            }
        };
        data.insert(inner.field.clone(), Value::String(text.to_owned()));
        let data = Fields(data);
        let cas = u32::try_from(expected)
            .map_err(|_| ProviderError::invalid(format!("version {expected} is out of Vault's range")))?;
        let what = self.what("writing a new version of");
        let written = self
            .call(&what, |client| {
                let data = &data;
                async move {
                    vaultrs::kv2::set_with_options(
                        &client,
                        &inner.mount,
                        &inner.path,
                        &data.0,
                        SetSecretRequestOptions { cas },
                    )
                    .await
                }
            })
            .await;
        let written = match written {
            Ok(written) => written,
            Err(ClientErrorOr::Client(_, ClientError::APIError { code: 400, errors }))
                if errors.iter().any(|e| e.contains("check-and-set")) =>
            {
                return Err(ProviderError::new(
                    keyroll_core::ProviderErrorKind::Conflict,
                    format!(
                        "{}/{} changed while rotating: version {expected} is no longer the newest (check-and-set \
                     refused the write), so someone else rotated at the same time. Nothing was written; look \
                     at the newest version, then rotate again if still needed",
                        inner.mount, inner.path
                    ),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        self.held()
            .insert((written.version, written.created_time.clone()), material.clone());
        tracing::info!(
            source = %self.inner.display,
            version = written.version,
            key = %material.fingerprint(),
            "published a new key version"
        );
        Ok(Published::new(
            written.version.to_string(),
            parse_time(&written.created_time),
        ))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, String), KeyMaterial>> {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A failed request: the vaultrs error still to be mapped (so callers can
/// look at the status), or an already mapped error.
enum ClientErrorOr {
    Client(String, ClientError),
    Provider(ProviderError),
}

impl From<ClientErrorOr> for ProviderError {
    fn from(error: ClientErrorOr) -> Self {
        match error {
            ClientErrorOr::Client(what, error) => provider_error(&what, &error),
            ClientErrorOr::Provider(error) => error,
        }
    }
}

/// A secret's fields, string values wiped from memory on drop.
struct Fields(Map<String, Value>);

impl Drop for Fields {
    fn drop(&mut self) {
        fn wipe(value: &mut Value) {
            match value {
                Value::String(text) => text.zeroize(),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(fields) => fields.values_mut().for_each(wipe),
                _ => {}
            }
        }
        self.0.values_mut().for_each(wipe);
    }
}

fn parse_time(text: &str) -> Option<SystemTime> {
    if text.is_empty() {
        return None;
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[async_trait]
impl KeyProvider for VaultProvider {
    async fn fetch(&self) -> Result<Vec<KeyVersion>, ProviderError> {
        let inner = &self.inner;
        let what = self.what("reading the metadata of");
        let metadata = self
            .call(&what, |client| async move {
                vaultrs::kv2::read_metadata(&client, &inner.mount, &inner.path).await
            })
            .await?;

        let mut numbered: Vec<(u64, &vaultrs::api::kv2::responses::SecretMetadata)> = metadata
            .versions
            .iter()
            .filter_map(|(n, meta)| n.parse().ok().map(|n| (n, meta)))
            .collect();
        numbered.sort_unstable_by_key(|&(n, _)| std::cmp::Reverse(n));

        let now = SystemTime::now();
        let mut versions = Vec::new();
        let mut enabled = 0;
        let mut keep = Vec::new();
        for (number, meta) in numbered {
            let deleted_at = parse_time(&meta.deletion_time);
            let state = if meta.destroyed {
                KeyState::Destroyed
            } else if deleted_at.is_some_and(|at| at <= now) {
                KeyState::Disabled
            } else {
                KeyState::Enabled
            };
            let cache_key = (number, meta.created_time.clone());
            let held = self.held().get(&cache_key).cloned();
            let material = match (state, held) {
                (KeyState::Enabled, _) if enabled >= inner.max_versions => break,
                (_, Some(material)) => Some(material),
                (KeyState::Enabled, None) => self.read_version(number).await?,
                // Never read while it was enabled: nothing to hold. Reported
                // with empty material so the store's state stays visible.
                (_, None) => Some(KeyMaterial::new(Vec::new())),
            };
            let Some(material) = material else {
                versions.push(KeyVersion::new(number.to_string(), Vec::new()).with_state(KeyState::Disabled));
                continue;
            };
            if state == KeyState::Enabled {
                enabled += 1;
                keep.push((cache_key, material.clone()));
            }
            let mut version = KeyVersion::new(number.to_string(), material).with_state(state);
            if let Some(created) = parse_time(&meta.created_time) {
                version = version.with_created(created);
            }
            if state == KeyState::Enabled
                && let Some(at) = deleted_at
            {
                // `delete_version_after`: Vault will delete it then.
                version = version.with_expires(at);
            }
            versions.push(version);
        }
        // Hold exactly what is reported enabled: superseded and deleted versions go.
        *self.held() = keep.into_iter().collect();
        if versions.is_empty() {
            return Err(ProviderError::not_found(format!(
                "{}/{} has no versions",
                inner.mount, inner.path
            )));
        }
        Ok(versions)
    }

    fn reach(&self) -> Reach {
        Reach::Shared
    }

    /// Soft-deletes version `id` (`vault kv delete -versions=ID`): it stops
    /// verifying on every replica at its next refresh, and `vault kv undelete`
    /// brings it back. Needs `update` on the secret's `delete/` path.
    async fn disable(&self, id: &str) -> Result<(), ProviderError> {
        let inner = &self.inner;
        let version: u64 = id
            .parse()
            .map_err(|_| ProviderError::invalid(format!("`{id}` is not a Vault version number")))?;
        let what = self.what(&format!("deleting version {version} of"));
        self.call(&what, |client| async move {
            vaultrs::kv2::delete_versions(&client, &inner.mount, &inner.path, vec![version]).await
        })
        .await?;
        self.held().retain(|(number, _), _| *number != version);
        tracing::info!(source = %inner.display, version, "disabled a key version");
        Ok(())
    }

    fn source(&self) -> String {
        self.inner.display.clone()
    }

    /// Writes `material` as a new version with check-and-set on the version
    /// current when it started, keeping the secret's other fields: when
    /// someone else wrote a version meanwhile, nothing is written and the
    /// error says so. See [`VaultProvider::publish_after`].
    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        let inner = &self.inner;
        let what = self.what("reading the metadata of");
        let current = match self
            .call(&what, |client| async move {
                vaultrs::kv2::read_metadata(&client, &inner.mount, &inner.path).await
            })
            .await
        {
            Ok(metadata) => metadata.current_version,
            Err(ClientErrorOr::Client(_, ref error)) if status_of(error) == Some(404) => 0,
            Err(error) => return Err(error.into()),
        };
        self.publish_after(material, current).await
    }
}

impl fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultProvider")
            .field("source", &self.inner.display)
            .field("auth", self.inner.session.auth())
            .field("max_versions", &self.inner.max_versions)
            .field(
                "held_versions",
                &self.held().keys().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish()
    }
}
