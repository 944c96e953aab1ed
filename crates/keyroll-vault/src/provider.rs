//! The provider: KV v2 versions in, key versions out.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use keyroll_core::remote::{FetchedVersions, JsonSecret};
use keyroll_core::{
    Capabilities, FromSource, KeyMaterial, KeyProvider, KeySource, KeyState, KeyVersion, ProviderError,
    Published, Reach, async_trait,
};
use serde_json::{Map, Value};
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretRequestOptions};
use vaultrs::api::kv2::responses::ReadSecretResponse;
use vaultrs::error::ClientError;

use crate::VaultProviderBuilder;
use crate::auth::Session;
use crate::client::{Authed, provider_error, status_of};
use crate::payload::{enabled_version, key_version, parse_time, state_of};

/// How often a fetch reads the secret's metadata by default: every 10th
/// fetch, and whenever the newest version is not what the last fetch leads
/// to expect. The other fetches read only the newest version (its key and
/// metadata in one request), so a replica makes one request per poll even in
/// the poll that finds a new key; a version deleted or destroyed in the store
/// stops verifying within this many polls (5 minutes at the default 30 s
/// interval).
pub const DEFAULT_METADATA_EVERY: u32 = 10;

/// Reads the versions of one KV v2 secret from Vault or OpenBao.
///
/// Build one with [`VaultProvider::builder`] or from a URI with
/// [`VaultProvider::from_source`]. Cloning is cheap and clones share the
/// token and the cache of versions already read.
#[derive(Clone)]
pub struct VaultProvider {
    inner: Arc<Inner>,
}

/// Where the key is: a KV v2 mount, the secret's path in it, the field.
pub(crate) struct Secret {
    pub(crate) mount: String,
    pub(crate) path: String,
    pub(crate) field: String,
}

struct Inner {
    session: Arc<Session>,
    mount: String,
    path: String,
    field: String,
    /// Set on the builder: wins over the policy's number.
    max_versions: Option<usize>,
    /// What `source()` shows: the address, mount, path and field, no credentials.
    display: String,
    metadata_every: u32,
    /// Materials already read, by version number and creation time (a
    /// re-created secret restarts its version numbers; the creation time tells
    /// the new version 1 from the old one).
    held: FetchedVersions<(u64, String)>,
    /// What the last fetch reported, carried forward by fetches that read
    /// only the newest version.
    last: Mutex<Option<Report>>,
}

/// The versions one fetch reported.
struct Report {
    /// Number and `created_time` of the newest version in the store.
    newest: (u64, String),
    versions: Vec<KeyVersion>,
    /// Fetches since the metadata was last read.
    since_metadata: u32,
    /// How many enabled versions it holds at most.
    max_versions: usize,
}

impl VaultProvider {
    /// A provider from checked settings ([`VaultProviderBuilder::build`]).
    pub(crate) fn new(
        session: Session,
        secret: Secret,
        max_versions: Option<usize>,
        metadata_every: u32,
        display: String,
    ) -> Self {
        let Secret { mount, path, field } = secret;
        Self {
            inner: Arc::new(Inner {
                session: Arc::new(session),
                mount,
                path,
                field,
                max_versions,
                metadata_every,
                display,
                held: FetchedVersions::new(),
                last: Mutex::new(None),
            }),
        }
    }

    /// Settings for a provider; see [`VaultProviderBuilder`].
    pub fn builder() -> VaultProviderBuilder {
        VaultProviderBuilder::default()
    }

    fn what(&self, action: &str) -> String {
        format!("{action} {}", self.secret())
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

    /// Reads one version (`None`: the newest) with its metadata; `None` when
    /// Vault has no readable version there (deleted or destroyed since the
    /// metadata read, or the newest is).
    async fn read(&self, version: Option<u64>) -> Result<Option<ReadSecretResponse>, ProviderError> {
        let inner = &self.inner;
        let what = match version {
            Some(version) => self.what(&format!("reading version {version} of")),
            None => self.what("reading the newest version of"),
        };
        let response = self
            .call(&what, |client| async move {
                let request = ReadSecretRequest {
                    mount: inner.mount.clone(),
                    path: inner.path.clone(),
                    version,
                };
                vaultrs::api::exec_with_result(&client, request).await
            })
            .await;
        match response {
            Ok(response) => Ok(Some(response)),
            Err(ClientErrorOr::Client(_, ref error)) if status_of(error) == Some(404) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Writes `material` as the version right after `expected` (0: the secret
    /// must not exist yet), keeping the other fields of version `expected`.
    /// Vault's check-and-set makes this a compare-and-swap: when the newest
    /// version is no longer `expected`, nothing is written and the error
    /// ([`Conflict`](keyroll_core::ProviderErrorKind::Conflict): re-read and
    /// decide again, never retry blindly) says someone else rotated.
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
        let previous = match expected {
            0 => None,
            expected => self.read(Some(expected)).await?,
        };
        let mut data = match previous {
            Some(response) if response.data.is_object() => JsonSecret::from_value(response.data),
            // Deleted meanwhile (its data is `null`), or no secret yet.
            _ => JsonSecret::from_value(Value::Object(Map::new())),
        };
        if let Value::Object(fields) = data.value_mut() {
            fields.insert(inner.field.clone(), Value::String(text.to_owned()));
        }
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
                        data.value(),
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
                        "{} changed while rotating: version {expected} is no longer the newest (check-and-set \
                     refused the write), so someone else rotated at the same time. Nothing was written; look \
                     at the newest version, then rotate again if still needed",
                        self.secret()
                    ),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        self.inner
            .held
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

    fn last(&self) -> std::sync::MutexGuard<'_, Option<Report>> {
        self.inner.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `MOUNT/PATH`, for messages.
    fn secret(&self) -> String {
        format!("{}/{}", self.inner.mount, self.inner.path)
    }

    /// Carries the last report, of at most `max_versions` enabled versions,
    /// forward with one read of the newest version; `None` when the metadata
    /// must be read instead.
    async fn poll_newest(&self, max_versions: usize) -> Result<Option<Vec<KeyVersion>>, ProviderError> {
        let inner = &self.inner;
        let expected = match &*self.last() {
            Some(report)
                if report.since_metadata + 1 < inner.metadata_every
                    && report.max_versions == max_versions =>
            {
                report.newest.clone()
            }
            _ => return Ok(None),
        };
        // None: the newest version is deleted or destroyed; the metadata says which.
        let Some(response) = self.read(None).await? else {
            return Ok(None);
        };
        let newest = (response.metadata.version, response.metadata.created_time.clone());
        let version = if newest == expected {
            None
        } else {
            let Some(version) = enabled_version(response, &inner.field, &self.secret(), SystemTime::now())?
            else {
                return Ok(None);
            };
            // `checked_add`: a version number of u64::MAX is the store's data.
            if expected.0.checked_add(1) != Some(newest.0) {
                // Several new versions, or a re-created secret: the metadata
                // tells the rest; this one is not read twice.
                self.inner.held.insert(newest, version.material);
                return Ok(None);
            }
            Some(version)
        };
        let mut last = self.last();
        let Some(report) = last.as_mut().filter(|report| report.newest == expected) else {
            // Disabled or re-read meanwhile.
            return Ok(None);
        };
        report.since_metadata += 1;
        if let Some(version) = version {
            self.inner.held.insert(newest.clone(), version.material.clone());
            report.newest = newest;
            report.versions.insert(0, version);
            let mut enabled = 0;
            if let Some(cut) = report.versions.iter().position(|version| {
                enabled += usize::from(version.state == KeyState::Enabled);
                enabled > max_versions
            }) {
                for dropped in report.versions.drain(cut..) {
                    if let Ok(number) = dropped.id.parse::<u64>() {
                        self.inner.held.retain(|(n, _)| *n != number);
                    }
                }
            }
        }
        Ok(Some(report.versions.clone()))
    }

    /// Reads the metadata, then the enabled versions not held yet, at most
    /// `max_versions` of them.
    async fn read_all(&self, max_versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
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
        let newest = numbered.first().map(|(n, meta)| (*n, meta.created_time.clone()));

        let now = SystemTime::now();
        let mut versions = Vec::new();
        let mut enabled = 0;
        let mut keep = Vec::new();
        for (number, meta) in numbered {
            let (state, deleted_at) = state_of(meta.destroyed, &meta.deletion_time, now);
            let cache_key = (number, meta.created_time.clone());
            let held = self.inner.held.get(&cache_key);
            let material = match (state, held) {
                (KeyState::Enabled, _) if enabled >= max_versions => break,
                (_, Some(material)) => Some(material),
                (KeyState::Enabled, None) => match self.read(Some(number)).await? {
                    Some(response) => enabled_version(response, &inner.field, &self.secret(), now)?
                        .map(|version| version.material),
                    None => None,
                },
                // Never read while it was enabled: nothing to hold. Reported
                // with empty material so the store's state stays visible.
                (_, None) => Some(KeyMaterial::new(Vec::new())),
            };
            let Some(material) = material else {
                // Deleted between the metadata read and this one.
                versions.push(KeyVersion::new(number.to_string(), Vec::new()).with_state(KeyState::Disabled));
                continue;
            };
            if state == KeyState::Enabled {
                enabled += 1;
                self.inner.held.insert(cache_key.clone(), material.clone());
                keep.push(cache_key);
            }
            versions.push(key_version(
                number,
                material,
                state,
                &meta.created_time,
                deleted_at,
            ));
        }
        // Hold exactly what is reported enabled: superseded and deleted versions go.
        let keep: std::collections::HashSet<(u64, String)> = keep.into_iter().collect();
        self.inner.held.retain(|key| keep.contains(key));
        let Some(newest) = newest.filter(|_| !versions.is_empty()) else {
            *self.last() = None;
            // It exists (no 404) but holds no key: empty, not missing.
            return Err(ProviderError::invalid(format!(
                "{} has no versions; put one with `keyroll rotate`",
                self.secret()
            )));
        };
        let mut last = self.last();
        // A fleet deployed at once would read the metadata in lockstep; a
        // random start spreads those reads over the polls.
        let since_metadata = match *last {
            None => rand::random_range(0..inner.metadata_every),
            Some(_) => 0,
        };
        *last = Some(Report {
            newest,
            versions: versions.clone(),
            since_metadata,
            max_versions,
        });
        Ok(versions)
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

impl FromSource for VaultProvider {
    const SCHEME: &'static str = "vault";

    /// Builds a provider from `vault://HOST:PORT/MOUNT/PATH?field=key` and the
    /// other parameters listed in the [crate docs](crate).
    ///
    /// ```
    /// use keyroll_core::{FromSource, KeyProvider, KeySource};
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
    fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        crate::uri::builder_from_source(source)?.build()
    }
}

#[async_trait]
impl KeyProvider for VaultProvider {
    /// One request per fetch: the newest version (key and metadata in one
    /// answer) while it is the one the last fetch reported or the one right
    /// after it; the metadata (then only the versions not held yet) on the
    /// first fetch, every [`metadata_every`](VaultProviderBuilder::metadata_every)
    /// fetches, after [`disable`](KeyProvider::disable), whenever the
    /// newest version is anything else or `versions` changed. At most
    /// `versions` enabled versions, unless the builder set
    /// [`max_versions`](VaultProviderBuilder::max_versions).
    async fn fetch_newest(&self, versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        let max_versions = self.inner.max_versions.unwrap_or(versions).max(1);
        match self.poll_newest(max_versions).await? {
            Some(versions) => Ok(versions),
            None => self.read_all(max_versions).await,
        }
    }

    fn reach(&self) -> Reach {
        Reach::Shared
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::READ_ONLY
            .with_publish()
            .with_disable()
            .with_compare_and_set()
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
        self.inner.held.retain(|(number, _)| *number != version);
        // The next fetch reads the metadata, which shows the deletion.
        *self.last() = None;
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

    /// [`publish_after`](VaultProvider::publish_after) the version `expected`
    /// names (`None`: only while the secret does not exist, `cas=0`).
    async fn publish_if(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        let expected = match expected {
            None => 0,
            Some(id) => id
                .parse()
                .map_err(|_| ProviderError::invalid(format!("`{id}` is not a Vault version number")))?,
        };
        self.publish_after(material, expected).await
    }
}

impl fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultProvider")
            .field("source", &self.inner.display)
            .field("auth", self.inner.session.auth())
            .field("max_versions", &self.inner.max_versions)
            .field("held_versions", &self.inner.held.len())
            .finish()
    }
}
