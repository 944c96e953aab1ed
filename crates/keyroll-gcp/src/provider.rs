//! The Secret Manager provider: names, client setup, fetch, store operations.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::{AccessSecretVersionResponse, SecretVersion, secret_version};
use keyroll_core::remote::{CheckedConnection, FetchedVersions, INSECURE_HTTP, insecure_http_param};
use keyroll_core::{
    Capabilities, FromSource, KeyMaterial, KeyProvider, KeySource, KeyState, KeyVersion, ProviderError,
    ProviderErrorKind, Published, Reach, async_trait,
};
use tokio::sync::OnceCell;

use crate::GcpProviderBuilder;

/// The URI scheme: `gcp-sm://projects/P/secrets/S`.
pub const SCHEME: &str = "gcp-sm";

/// At most this many attempts per call (the first and one retry).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

/// Each attempt gives up after this long; a call, retries included, after
/// this times the attempts.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// The global Secret Manager endpoint.
const GLOBAL_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// A secret's full resource name: `projects/P/secrets/S` or, for a regional
/// secret, `projects/P/locations/L/secrets/S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretName {
    full: String,
    location: Option<String>,
}

impl SecretName {
    /// Parses a full resource name.
    ///
    /// ```
    /// let name = keyroll_gcp::SecretName::parse("projects/p/locations/europe-west1/secrets/s").unwrap();
    /// assert_eq!(name.location(), Some("europe-west1"));
    /// ```
    pub fn parse(name: &str) -> Result<Self, ProviderError> {
        let parts: Vec<&str> = name.split('/').collect();
        let location = match parts.as_slice() {
            ["projects", p, "secrets", s] if valid(p) && valid(s) => None,
            ["projects", p, "locations", l, "secrets", s] if valid(p) && valid(l) && valid(s) => {
                Some((*l).to_owned())
            }
            _ => {
                return Err(ProviderError::config(format!(
                    "`{name}` is not a Secret Manager secret name; expected projects/PROJECT/secrets/SECRET \
                     or projects/PROJECT/locations/LOCATION/secrets/SECRET"
                )));
            }
        };
        Ok(Self {
            full: name.to_owned(),
            location,
        })
    }

    /// The full resource name.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The location of a regional secret.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The endpoint that serves this secret: the regional endpoint
    /// (`https://secretmanager.L.rep.googleapis.com`) for a regional secret,
    /// the global one otherwise.
    pub fn default_endpoint(&self) -> String {
        match &self.location {
            Some(location) => format!("https://secretmanager.{location}.rep.googleapis.com"),
            None => GLOBAL_ENDPOINT.to_owned(),
        }
    }

    fn version(&self, id: &str) -> String {
        format!("{}/versions/{id}", self.full)
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

fn valid(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Reads (and for `keyroll rotate`, writes) the versions of one Secret
/// Manager secret. See the [crate docs](crate).
///
/// The client is built on the first call (so construction stays synchronous);
/// payloads of enabled versions are cached by version name as soon as each is
/// read (a fetch cut short by a timeout keeps what it read), so a
/// steady-state refresh is one `ListSecretVersions` call. A fetch reads at
/// most as many enabled versions, newest first, as the policy in use can use.
pub struct GcpProvider {
    secret: SecretName,
    endpoint: Option<String>,
    allow_insecure_http: bool,
    max_attempts: u32,
    attempt_timeout: Duration,
    client: OnceCell<SecretManagerService>,
    held: FetchedVersions<String>,
}

impl fmt::Debug for GcpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpProvider")
            .field("secret", &self.secret.as_str())
            .field("endpoint", &self.endpoint())
            .field("max_attempts", &self.max_attempts)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("held_versions", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl GcpProvider {
    /// Settings for a provider; at least [`secret`](GcpProviderBuilder::secret).
    pub fn builder() -> GcpProviderBuilder {
        GcpProviderBuilder::default()
    }

    /// A provider from checked settings ([`GcpProviderBuilder::build`]).
    pub(crate) fn new(secret: SecretName, connection: CheckedConnection) -> Self {
        Self {
            secret,
            endpoint: connection.endpoint.map(|e| e.url().to_owned()),
            allow_insecure_http: connection.allow_insecure_http,
            max_attempts: connection.max_attempts,
            attempt_timeout: connection.attempt_timeout,
            client: OnceCell::new(),
            held: FetchedVersions::new(),
        }
    }

    /// The secret read.
    pub fn secret(&self) -> &SecretName {
        &self.secret
    }

    /// The endpoint spoken to.
    pub fn endpoint(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| self.secret.default_endpoint())
    }

    fn anonymous(&self) -> bool {
        self.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"))
    }

    async fn client(&self) -> Result<&SecretManagerService, ProviderError> {
        self.client
            .get_or_try_init(|| async {
                // One TLS stack in the build: rustls with ring. Installing fails
                // harmlessly when the application installed a provider already.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let backoff = ExponentialBackoffBuilder::new()
                    .with_initial_delay(Duration::from_millis(100))
                    .with_maximum_delay(Duration::from_secs(1))
                    .build()
                    .map_err(|e| ProviderError::config("invalid retry backoff").with_source(e))?;
                let mut builder = SecretManagerService::builder()
                    .with_endpoint(self.endpoint())
                    .with_retry_policy(
                        Aip194Strict
                            .with_attempt_limit(self.max_attempts)
                            .with_time_limit(self.attempt_timeout.saturating_mul(self.max_attempts)),
                    )
                    .with_backoff_policy(backoff)
                    .with_attempt_timeout(self.attempt_timeout);
                if self.anonymous() {
                    builder = builder
                        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
                }
                builder.build().await.map_err(|e| {
                    ProviderError::config(format!(
                        "cannot set up the Secret Manager client for {}: no usable credentials? Set \
                         GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`",
                        self.secret
                    ))
                    .with_source(e)
                })
            })
            .await
    }

    /// Every version of the secret, all pages.
    async fn list(&self, client: &SecretManagerService) -> Result<Vec<SecretVersion>, ProviderError> {
        let mut versions = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_secret_versions()
                .set_parent(self.secret.as_str())
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| classify(e, "list the versions of", self.secret.as_str()))?;
            versions.extend(page.versions);
            if page.next_page_token.is_empty() {
                return Ok(versions);
            }
            token = page.next_page_token;
        }
    }

    /// The payload of enabled version `name`, checksum verified. `None` when
    /// the version was disabled between the list and the access.
    async fn access(
        &self,
        client: &SecretManagerService,
        name: &str,
    ) -> Result<Option<KeyMaterial>, ProviderError> {
        let response = match client.access_secret_version().set_name(name).send().await {
            Ok(response) => response,
            Err(e) if e.status().is_some_and(|s| s.code == Code::FailedPrecondition) => return Ok(None),
            Err(e) => return Err(classify(e, "access", name)),
        };
        payload_material(name, response).map(Some)
    }
}

/// The key in `AccessSecretVersion`'s answer for version `name`, its
/// `dataCrc32c` verified. A payload without a checksum (older servers,
/// emulators) is accepted with a warning; a missing payload is an empty key
/// (which the policy's strength check refuses). Errors name the version,
/// never the payload.
pub(crate) fn payload_material(
    name: &str,
    response: AccessSecretVersionResponse,
) -> Result<KeyMaterial, ProviderError> {
    let payload = response.payload.unwrap_or_default();
    let actual = crc32c::crc32c(&payload.data);
    match payload.data_crc32c {
        Some(expected) if expected == i64::from(actual) => {}
        Some(_) => {
            return Err(ProviderError::invalid(format!(
                "the payload of {name} does not match its dataCrc32c checksum (corrupted in transit or \
                 in the store); refusing it and keeping the last good keys"
            )));
        }
        None => tracing::warn!(version = name, "Secret Manager sent a payload without dataCrc32c"),
    }
    Ok(KeyMaterial::new(payload.data.to_vec()))
}

/// The version id: the last segment of its name (the version number).
fn version_id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub(crate) fn system_time(timestamp: &google_cloud_wkt::Timestamp) -> Option<SystemTime> {
    let seconds = u64::try_from(timestamp.seconds()).ok()?;
    let nanos = u32::try_from(timestamp.nanos()).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

fn state_of(version: &SecretVersion) -> KeyState {
    match version.state {
        secret_version::State::Enabled => KeyState::Enabled,
        secret_version::State::Destroyed => KeyState::Destroyed,
        // DISABLED, and anything newer than this client: never verifies.
        _ => KeyState::Disabled,
    }
}

/// Maps a client error to a provider error that says what failed and how to fix it.
fn classify(error: GaxError, action: &str, resource: &str) -> ProviderError {
    let status = error.status().map(|s| (s.code, s.message.clone()));
    let problem = match &status {
        Some((code, message)) => format!("{code:?}: {message}"),
        None => error.to_string(),
    };
    let message = |hint: &str| format!("cannot {action} {resource}: {problem}{hint}");
    let mapped = match status.map(|(code, _)| code) {
        Some(Code::NotFound) => ProviderError::not_found(message(
            "; check the project and secret name (a regional secret needs its locations/L segment)",
        )),
        Some(Code::PermissionDenied | Code::Unauthenticated) => ProviderError::permission_denied(message(
            "; grant the caller roles/secretmanager.secretAccessor (and roles/secretmanager.secretVersionManager \
             to rotate, plus secretmanager.secrets.update to rotate only if unchanged) on the secret",
        )),
        Some(Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange) => {
            ProviderError::config(message(""))
        }
        Some(_) => ProviderError::unavailable(message("; the store failed, retrying at the next refresh")),
        None if error.is_authentication() => ProviderError::permission_denied(message(
            "; no usable credentials: set GOOGLE_APPLICATION_CREDENTIALS or run \
             `gcloud auth application-default login`",
        )),
        None if error.is_deserialization() => ProviderError::invalid(message("")),
        None => match error.http_status_code() {
            Some(code) => ProviderError::new(
                ProviderErrorKind::from_http_status(code),
                message("; check the endpoint"),
            ),
            // Timeouts, refused connections, exhausted retries.
            None => ProviderError::unavailable(message("; check the endpoint and the network")),
        },
    };
    mapped.with_source(error)
}

impl FromSource for GcpProvider {
    const SCHEME: &'static str = SCHEME;

    /// Builds a provider from `gcp-sm://projects/P/secrets/S` (or
    /// `gcp-sm://projects/P/locations/L/secrets/S`) with an optional
    /// `?endpoint=URL` (and `&insecure_http=true` to allow plain `http://`
    /// to a host other than this machine).
    ///
    /// ```
    /// use keyroll_core::{FromSource, KeySource};
    /// let source = KeySource::parse("gcp-sm://projects/p/secrets/s?endpoint=http://127.0.0.1:8085").unwrap();
    /// let provider = keyroll_gcp::GcpProvider::from_source(&source).unwrap();
    /// assert_eq!(provider.secret().as_str(), "projects/p/secrets/s");
    /// assert_eq!(provider.endpoint(), "http://127.0.0.1:8085");
    /// ```
    fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        source.expect_scheme(Self::SCHEME)?;
        source.expect_params(&["endpoint", INSECURE_HTTP])?;
        // KeySource puts `projects` in the authority and the rest in the path.
        let name = format!("{}{}", source.authority(), source.path());
        let builder = Self::builder()
            .secret(name.trim_start_matches('/'))
            .allow_insecure_http(insecure_http_param(source)?);
        let builder: GcpProviderBuilder = source.apply_params(builder, &[("endpoint", |b, v| b.endpoint(v))]);
        builder.build().map_err(|e| {
            ProviderError::config(format!(
                "{}; in `{source}` (use {SCHEME}://projects/PROJECT/secrets/SECRET)",
                e.message()
            ))
        })
    }
}

#[async_trait]
impl KeyProvider for GcpProvider {
    /// Reads at most `versions` enabled versions, newest first.
    async fn fetch_newest(&self, versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        let client = self.client().await?;
        let mut listed = self.list(client).await?;
        // Newest first: version numbers grow with creation.
        listed.sort_by_key(|v| std::cmp::Reverse(version_id(&v.name).parse::<u64>().unwrap_or(0)));
        let max_versions = versions.max(1);
        let mut versions = Vec::with_capacity(listed.len());
        let mut enabled = Vec::new();
        for listed in &listed {
            let id = version_id(&listed.name).to_owned();
            let mut state = state_of(listed);
            if state == KeyState::Enabled && enabled.len() >= max_versions {
                // Older than anything the policy can use: neither read nor reported.
                continue;
            }
            let material = if state == KeyState::Enabled {
                match self.held.get(&listed.name) {
                    Some(material) => Some(material),
                    // Held at once: a fetch cut short (a timeout) keeps what it read.
                    None => match self.access(client, &listed.name).await? {
                        Some(material) => {
                            self.held.insert(listed.name.clone(), material.clone());
                            Some(material)
                        }
                        None => {
                            state = KeyState::Disabled;
                            None
                        }
                    },
                }
            } else {
                None
            };
            if state == KeyState::Enabled {
                enabled.push(listed.name.clone());
            }
            let mut version = KeyVersion::new(id, material.unwrap_or_else(|| KeyMaterial::new(Vec::new())))
                .with_state(state);
            if let Some(created) = listed.create_time.as_ref().and_then(system_time) {
                version = version.with_created(created);
            }
            versions.push(version);
        }
        // Keep only payloads of versions still enabled: a disabled version's
        // material leaves memory, and is fetched again if re-enabled.
        self.held.retain(|name| enabled.contains(name));
        if versions.is_empty() {
            // It exists (the listing answered) but holds no key: empty, not missing.
            return Err(ProviderError::invalid(format!(
                "{} has no versions; add one with `keyroll rotate`",
                self.secret.as_str()
            )));
        }
        Ok(versions)
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

    fn source(&self) -> String {
        // `from_source` joins the authority (`projects`) and the path: split them back.
        let name = self.secret.as_str();
        let (authority, path) = name.split_at(name.find('/').unwrap_or(name.len()));
        let params: Vec<(&str, &str)> = [
            self.endpoint.as_deref().map(|e| ("endpoint", e)),
            self.allow_insecure_http.then_some((INSECURE_HTTP, "true")),
        ]
        .into_iter()
        .flatten()
        .collect();
        KeySource::format(SCHEME, authority, path, &params)
    }

    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        let client = self.client().await?;
        self.add_version(client, material).await
    }

    /// Claims the version after `expected` in the secret's
    /// [`CLAIM`](crate::CLAIM) annotation with an `UpdateSecret` under the
    /// etag read (one writer per etag wins), then adds the version.
    /// `expected = None` creates a secret that does not exist (a second
    /// creator gets `ALREADY_EXISTS`) or claims one without versions. A
    /// claim held by a writer that crashed lapses after
    /// [`CLAIM_TTL`](crate::CLAIM_TTL). Needs `secretmanager.secrets.get`,
    /// `secretmanager.secrets.update`, `secretmanager.versions.list` and
    /// `secretmanager.versions.add` (and `secretmanager.secrets.create` to
    /// create the secret).
    async fn publish_if(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        self.publish_after(material, expected).await
    }

    async fn disable(&self, id: &str) -> Result<(), ProviderError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProviderError::config(format!(
                "`{id}` is not a Secret Manager version number of {}",
                self.secret
            )));
        }
        let name = self.secret.version(id);
        let client = self.client().await?;
        client
            .disable_secret_version()
            .set_name(&name)
            .send()
            .await
            .map_err(|e| classify(e, "disable", &name))?;
        self.held.remove(&name);
        Ok(())
    }
}

mod publish;
#[cfg(test)]
mod tests;

pub use publish::{CLAIM, CLAIM_TTL};
