//! The provider: versions and stage labels of one secret in, key versions out.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::{Blob, DateTime};
use keyroll_core::remote::{
    Endpoint, FetchedVersions, FieldProblem, INSECURE_HTTP, JsonSecret, insecure_http_param,
};
use keyroll_core::{
    DEFAULT_MAX_FALLBACKS, FromSource, KeyMaterial, KeyProvider, KeySource, KeyVersion, ProviderError,
    ProviderErrorKind, Published, Reach, Stage, async_trait,
};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, OnceCell};
use zeroize::Zeroizing;

use crate::errors::provider_error;

/// Default connect timeout: a dead endpoint is reported within seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default timeout of one attempt of one API call.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default number of attempts per API call (the first and one retry).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

/// How many versions without stage labels ("deprecated" versions) a fetch
/// reports, newest first, until a [`Refresher`](keyroll_core::Refresher)
/// tells the provider its policy
/// ([`set_version_limit`](KeyProvider::set_version_limit)): as many as the
/// default policy keeps as fallbacks. Each is read once per process.
pub const DEFAULT_MAX_DEPRECATED: usize = DEFAULT_MAX_FALLBACKS;

const AWSCURRENT: &str = "AWSCURRENT";
const AWSPENDING: &str = "AWSPENDING";
const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// First retry delay; short, so two attempts fit well inside a refresh.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// Reads the versions of one AWS Secrets Manager secret, with their stage
/// labels and creation dates.
///
/// Build one with [`AwsProvider::builder`] or from a URI with
/// [`AwsProvider::from_source`]. Cloning is cheap; clones share the client,
/// the cache of versions already read and the [call counter](AwsProvider::api_calls).
#[derive(Clone)]
pub struct AwsProvider {
    inner: Arc<Inner>,
}

struct Inner {
    secret_id: String,
    field: Option<String>,
    /// Set on the builder: wins over the policy's number.
    max_deprecated: Option<usize>,
    /// From the policy in use (`set_version_limit`).
    policy_deprecated: AtomicUsize,
    settings: Settings,
    /// What `source()` shows: id, region, field, endpoint; never credentials.
    display: String,
    /// Built on first use: loading the AWS configuration is async.
    client: OnceCell<Client>,
    /// Held for a whole fetch, so concurrent fetches make one set of calls.
    cache: Mutex<Cache>,
    calls: AtomicU64,
}

#[derive(Clone)]
struct Settings {
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    sdk_config: Option<SdkConfig>,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    max_attempts: u32,
}

/// What the last successful fetch saw.
#[derive(Default)]
struct Cache {
    /// `DescribeSecret`'s `VersionIdsToStages` of the last fetch.
    stages: Option<HashMap<String, Vec<String>>>,
    /// What the last fetch reported.
    versions: Vec<KeyVersion>,
    /// Versions already read, by id: version contents never change in AWS.
    held: FetchedVersions<String, Held>,
}

/// One version as `GetSecretValue` returned it.
#[derive(Clone)]
struct Held {
    material: KeyMaterial,
    /// `GetSecretValue`'s creation date. Preferred over the listing's: moto
    /// (5.x) lists every version as created "now".
    created: Option<SystemTime>,
}

/// Settings for an [`AwsProvider`]. Unset settings come from the standard AWS
/// configuration chain (environment, profile, web identity, IMDS).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AwsProviderBuilder {
    secret_id: Option<String>,
    region: Option<String>,
    field: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    sdk_config: Option<SdkConfig>,
    connect_timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    max_attempts: Option<u32>,
    max_deprecated: Option<usize>,
    allow_insecure_http: bool,
}

impl AwsProviderBuilder {
    /// The secret: its name (`prod/myapp/key`) or full ARN.
    pub fn secret_id(mut self, id: impl Into<String>) -> Self {
        self.secret_id = Some(id.into());
        self
    }

    /// The region. Default: the ARN's region, else the standard chain
    /// (`AWS_REGION`, profile, IMDS).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Reads the key from field `name` of a JSON object secret string
    /// (default: the whole secret string, or the secret binary).
    pub fn field(mut self, name: impl Into<String>) -> Self {
        self.field = Some(name.into());
        self
    }

    /// Sends requests to `url` instead of AWS (a local server such as moto
    /// or LocalStack). `AWS_ENDPOINT_URL` is honoured without this. Plain
    /// `http://` is refused to a host other than this machine unless
    /// [`allow_insecure_http`](Self::allow_insecure_http); user info
    /// (`user:password@`) is always refused.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Allows a plain `http://` endpoint on another host (`?insecure_http=true`
    /// in the URI): the signed requests and the keys then cross the network
    /// in clear. Default: refused, except to loopback.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Uses these static credentials instead of the standard chain (local
    /// servers, tests). The secret key never appears in `Debug`.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "keyroll-static",
        ));
        self
    }

    /// Starts from an AWS configuration the application already loaded
    /// (`aws_config::load_defaults`), instead of loading one. Region,
    /// endpoint and credentials set on this builder still win; the timeouts
    /// and retries of this builder always apply.
    pub fn sdk_config(mut self, config: SdkConfig) -> Self {
        self.sdk_config = Some(config);
        self
    }

    /// Connect timeout (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Timeout of one attempt of one call (default [`DEFAULT_ATTEMPT_TIMEOUT`]).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Attempts per call, at least 1 (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// How many versions without stage labels to report; 0 reports only
    /// labelled versions. Default: as many as the policy in use keeps as
    /// fallbacks ([`DEFAULT_MAX_DEPRECATED`] until a refresher says).
    pub fn max_deprecated(mut self, max: usize) -> Self {
        self.max_deprecated = Some(max);
        self
    }

    /// Builds the provider. Nothing is sent yet: the AWS configuration is
    /// loaded and the first call made by the first [`fetch`](KeyProvider::fetch).
    ///
    /// # Errors
    /// [`Config`](ProviderErrorKind::Config) when the secret id is missing or
    /// empty, the field is empty, the endpoint fails the
    /// [endpoint check](keyroll_core::remote::Endpoint::check), the attempts
    /// or a timeout are 0.
    pub fn build(self) -> Result<AwsProvider, ProviderError> {
        let secret_id = self.secret_id.unwrap_or_default();
        if secret_id.is_empty() {
            return Err(ProviderError::config(
                "no AWS secret given: use aws-sm://SECRET_NAME_OR_ARN (or the builder's secret_id)",
            ));
        }
        if self.field.as_deref() == Some("") {
            return Err(ProviderError::config(
                "`field` is empty; name the JSON field that holds the key, or leave `field` out to use the whole secret",
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            Endpoint::check(
                "AWS Secrets Manager",
                "the signed requests",
                endpoint,
                self.allow_insecure_http,
            )?;
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 {
            return Err(ProviderError::config("max_attempts must be at least 1"));
        }
        if self.connect_timeout.is_some_and(|t| t.is_zero())
            || self.attempt_timeout.is_some_and(|t| t.is_zero())
        {
            return Err(ProviderError::config(
                "connect_timeout and attempt_timeout must be more than 0",
            ));
        }
        let region = self.region.or_else(|| region_of_arn(&secret_id));

        // `from_source` takes the id whole (authority and path): split it back.
        let (authority, path) = secret_id.split_at(secret_id.find('/').unwrap_or(secret_id.len()));
        let params: Vec<(&str, &str)> = [
            region.as_deref().map(|r| ("region", r)),
            self.field.as_deref().map(|f| ("field", f)),
            self.endpoint.as_deref().map(|e| ("endpoint", e)),
            self.allow_insecure_http.then_some((INSECURE_HTTP, "true")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let display = KeySource::format(<AwsProvider as FromSource>::SCHEME, authority, path, &params);

        Ok(AwsProvider {
            inner: Arc::new(Inner {
                secret_id,
                field: self.field,
                max_deprecated: self.max_deprecated,
                policy_deprecated: AtomicUsize::new(DEFAULT_MAX_DEPRECATED),
                settings: Settings {
                    region,
                    endpoint: self.endpoint,
                    credentials: self.credentials,
                    sdk_config: self.sdk_config,
                    connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                    attempt_timeout: self.attempt_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
                    max_attempts,
                },
                display,
                client: OnceCell::new(),
                cache: Mutex::new(Cache::default()),
                calls: AtomicU64::new(0),
            }),
        })
    }
}

/// The region inside a Secrets Manager ARN
/// (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`).
fn region_of_arn(id: &str) -> Option<String> {
    let mut parts = id.splitn(6, ':');
    let (arn, _partition, service, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (arn == "arn" && service == "secretsmanager" && !region.is_empty()).then(|| region.to_owned())
}

impl AwsProvider {
    /// Settings for a provider; at least [`secret_id`](AwsProviderBuilder::secret_id).
    pub fn builder() -> AwsProviderBuilder {
        AwsProviderBuilder::default()
    }

    /// The secret's name or ARN, as configured.
    pub fn secret_id(&self) -> &str {
        &self.inner.secret_id
    }

    /// How many Secrets Manager API calls (each billed by AWS) this provider
    /// and its clones have sent so far. A refresh of an unchanged secret costs
    /// one (`DescribeSecret`).
    pub fn api_calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<&Client, ProviderError> {
        self.inner
            .client
            .get_or_try_init(|| build_client(&self.inner.settings))
            .await
    }

    /// Sends one API call, counting it and translating its error.
    async fn call<T, E>(
        &self,
        operation: &str,
        request: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, ProviderError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        request
            .await
            .map_err(|e| provider_error(operation, &self.inner.secret_id, &e))
    }

    async fn describe(&self, client: &Client) -> Result<HashMap<String, Vec<String>>, ProviderError> {
        let described = self
            .call(
                "DescribeSecret",
                client.describe_secret().secret_id(&self.inner.secret_id).send(),
            )
            .await?;
        if described.deleted_date().is_some() {
            return Err(ProviderError::not_found(format!(
                "AWS secret `{}` is scheduled for deletion; restore it with `aws secretsmanager restore-secret`",
                self.inner.secret_id
            )));
        }
        Ok(described.version_ids_to_stages().cloned().unwrap_or_default())
    }

    /// Every version (deprecated ones included): id, labels, creation time.
    async fn list(&self, client: &Client) -> Result<Vec<Listed>, ProviderError> {
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .call(
                    "ListSecretVersionIds",
                    client
                        .list_secret_version_ids()
                        .secret_id(&self.inner.secret_id)
                        .include_deprecated(true)
                        .max_results(100)
                        .set_next_token(token.take())
                        .send(),
                )
                .await?;
            for entry in page.versions() {
                let Some(id) = entry.version_id() else { continue };
                listed.push(Listed {
                    id: id.to_owned(),
                    stage: stage_of(entry.version_stages()),
                    labelled: !entry.version_stages().is_empty(),
                    created: entry.created_date().and_then(system_time),
                    order: listed.len(),
                });
            }
            match page.next_token() {
                Some(next) if !next.is_empty() && !page.versions().is_empty() => {
                    token = Some(next.to_owned())
                }
                _ => break,
            }
        }
        Ok(listed)
    }

    async fn read_version(&self, client: &Client, version_id: &str) -> Result<Held, ProviderError> {
        let mut output = self
            .call(
                "GetSecretValue",
                client
                    .get_secret_value()
                    .secret_id(&self.inner.secret_id)
                    .version_id(version_id)
                    .send(),
            )
            .await?;
        let created = output.created_date().and_then(system_time);
        let string = output.secret_string.take().map(Zeroizing::new);
        let binary = output
            .secret_binary
            .take()
            .map(|b| Zeroizing::new(b.into_inner()));
        let material = material_of(
            &self.inner.secret_id,
            version_id,
            self.inner.field.as_deref(),
            string.as_deref().map(String::as_str),
            binary.as_deref().map(Vec::as_slice),
        )?;
        Ok(Held { material, created })
    }

    /// The secret string of the version labelled `AWSCURRENT`, if any.
    async fn current_string(&self, client: &Client) -> Result<Option<Zeroizing<String>>, ProviderError> {
        let request = client
            .get_secret_value()
            .secret_id(&self.inner.secret_id)
            .version_stage(AWSCURRENT)
            .send();
        match self.call("GetSecretValue", request).await {
            Ok(mut output) => Ok(output.secret_string.take().map(Zeroizing::new)),
            Err(error) if error.kind() == ProviderErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// One entry of `ListSecretVersionIds`.
struct Listed {
    id: String,
    stage: Option<Stage>,
    /// Carries any label (AWS's or a custom one).
    labelled: bool,
    created: Option<SystemTime>,
    /// Position in the listing, the last tie-breaker (moto lists oldest first).
    order: usize,
}

/// The stage a version's labels give it. A version that is both current and
/// pending (a rotation that finished) is current.
fn stage_of(labels: &[String]) -> Option<Stage> {
    let has = |label: &str| labels.iter().any(|l| l == label);
    if has(AWSCURRENT) {
        Some(Stage::Current)
    } else if has(AWSPENDING) {
        Some(Stage::Pending)
    } else if has(AWSPREVIOUS) {
        Some(Stage::Previous)
    } else {
        None
    }
}

/// Orders versions with equal creation times (AWS keeps seconds): pending,
/// current, previous, then unlabelled.
fn stage_rank(stage: Option<Stage>) -> u8 {
    match stage {
        Some(Stage::Pending) => 0,
        Some(Stage::Current) => 1,
        Some(Stage::Previous) => 2,
        _ => 3,
    }
}

/// Newest first by creation time; equal times (AWS keeps seconds) by stage
/// (pending, current, previous, unlabelled), then later in the listing first.
fn newest_first(
    (a_created, a_stage, a_order): (Option<SystemTime>, Option<Stage>, usize),
    (b_created, b_stage, b_order): (Option<SystemTime>, Option<Stage>, usize),
) -> std::cmp::Ordering {
    b_created
        .cmp(&a_created)
        .then(stage_rank(a_stage).cmp(&stage_rank(b_stage)))
        .then(b_order.cmp(&a_order))
}

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

async fn build_client(settings: &Settings) -> Result<Client, ProviderError> {
    let sdk_config = match &settings.sdk_config {
        Some(config) => config.clone(),
        None => {
            let mut loader = aws_config::defaults(BehaviorVersion::latest());
            if let Some(region) = &settings.region {
                loader = loader.region(Region::new(region.clone()));
            }
            if let Some(endpoint) = &settings.endpoint {
                loader = loader.endpoint_url(endpoint);
            }
            if let Some(credentials) = &settings.credentials {
                loader = loader.credentials_provider(credentials.clone());
            }
            loader.load().await
        }
    };
    let attempts = settings.max_attempts;
    let mut config = aws_sdk_secretsmanager::config::Builder::from(&sdk_config)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(settings.connect_timeout)
                .operation_attempt_timeout(settings.attempt_timeout)
                .operation_timeout(
                    (settings.attempt_timeout.saturating_add(INITIAL_BACKOFF * 2)).saturating_mul(attempts),
                )
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(INITIAL_BACKOFF),
        );
    if let Some(region) = &settings.region {
        config = config.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint);
    }
    if let Some(credentials) = &settings.credentials {
        config = config.credentials_provider(credentials.clone());
    }
    let config = config.build();
    if config.region().is_none() {
        return Err(ProviderError::config(
            "no AWS region: add ?region=REGION to the aws-sm:// URI, give the secret's full ARN, or set AWS_REGION",
        ));
    }
    Ok(Client::from_conf(config))
}

impl FromSource for AwsProvider {
    const SCHEME: &'static str = "aws-sm";

    /// Builds a provider from `aws-sm://SECRET_ID?region=R&field=F&endpoint=URL`
    /// (all parameters optional). `SECRET_ID` is a name or an ARN, taken
    /// whole up to the `?`; percent-escapes are decoded.
    ///
    /// ```
    /// use keyroll_aws::AwsProvider;
    /// use keyroll_core::{FromSource, KeyProvider, KeySource};
    ///
    /// let source = KeySource::parse(
    ///     "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:myapp/key-AbCdEf?field=key",
    /// )?;
    /// let provider = AwsProvider::from_source(&source)?;
    /// assert_eq!(provider.secret_id(), "arn:aws:secretsmanager:eu-west-1:123456789012:secret:myapp/key-AbCdEf");
    /// assert!(provider.source().contains("region=eu-west-1"));
    /// # Ok::<(), keyroll_core::ProviderError>(())
    /// ```
    ///
    /// # Errors
    /// [`Config`](ProviderErrorKind::Config) for another scheme, an unknown
    /// parameter, an empty secret id or field, or a malformed endpoint.
    fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        source.expect_scheme(Self::SCHEME)?;
        source.expect_params(&["region", "field", "endpoint", INSECURE_HTTP])?;
        let mut builder = Self::builder().secret_id(format!("{}{}", source.authority(), source.path()));
        if let Some(region) = source.param("region") {
            builder = builder.region(region);
        }
        if let Some(field) = source.param("field") {
            builder = builder.field(field);
        }
        if let Some(endpoint) = source.param("endpoint") {
            builder = builder.endpoint_url(endpoint);
        }
        builder.allow_insecure_http(insecure_http_param(source)?).build()
    }
}

#[async_trait]
impl KeyProvider for AwsProvider {
    /// `DescribeSecret`; when the labels changed since the last fetch, also
    /// `ListSecretVersionIds` and `GetSecretValue` for each version not held yet.
    async fn fetch(&self) -> Result<Vec<KeyVersion>, ProviderError> {
        let client = self.client().await?;
        let mut cache = self.inner.cache.lock().await;
        let stages = self.describe(client).await?;
        if cache.stages.as_ref() == Some(&stages) && !cache.versions.is_empty() {
            return Ok(cache.versions.clone());
        }

        let mut listed = self.list(client).await?;
        listed.sort_by(|a, b| newest_first((a.created, a.stage, a.order), (b.created, b.stage, b.order)));
        // Labelled versions, and the newest few that lost their labels.
        let max_deprecated = self
            .inner
            .max_deprecated
            .unwrap_or_else(|| self.inner.policy_deprecated.load(Ordering::Relaxed));
        let mut deprecated = 0;
        listed.retain(|v| {
            v.stage.is_some() || {
                deprecated += 1;
                deprecated <= max_deprecated
            }
        });

        let mut read = Vec::with_capacity(listed.len());
        for entry in &listed {
            let held = match cache.held.get(&entry.id) {
                Some(held) => held,
                None => match self.read_version(client, &entry.id).await {
                    Ok(held) => {
                        cache.held.insert(entry.id.clone(), held.clone());
                        held
                    }
                    // A deprecated version AWS deleted since the listing: it is gone.
                    Err(error) if !entry.labelled && error.kind() == ProviderErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                },
            };
            read.push((entry, held.created.or(entry.created), held.material));
        }
        read.sort_by(|(a, a_created, _), (b, b_created, _)| {
            newest_first((*a_created, a.stage, a.order), (*b_created, b.stage, b.order))
        });
        let mut versions = Vec::with_capacity(read.len());
        for (entry, created, material) in read {
            let mut version = KeyVersion::new(entry.id.clone(), material);
            if let Some(created) = created {
                version = version.with_created(created);
            }
            if let Some(stage) = entry.stage {
                version = version.with_stage(stage);
            }
            versions.push(version);
        }
        if versions.is_empty() {
            // It exists (DescribeSecret answered) but holds no key: empty, not missing.
            return Err(ProviderError::invalid(format!(
                "AWS secret `{}` has no versions; put one with `keyroll rotate --keys {}`",
                self.inner.secret_id, self.inner.display
            )));
        }
        let kept: HashSet<&str> = versions.iter().map(|v| v.id.as_str()).collect();
        cache.held.retain(|id| kept.contains(id.as_str()));
        cache.stages = Some(stages);
        cache.versions = versions.clone();
        Ok(versions)
    }

    fn reach(&self) -> Reach {
        Reach::Shared
    }

    /// Reports as many deprecated versions as the policy has fallbacks (the
    /// versions it uses, less the current and pending ones), unless the
    /// builder set [`max_deprecated`](AwsProviderBuilder::max_deprecated).
    fn set_version_limit(&self, versions: usize) {
        self.inner
            .policy_deprecated
            .store(versions.saturating_sub(2), Ordering::Relaxed);
    }

    fn source(&self) -> String {
        self.inner.display.clone()
    }

    /// `PutSecretValue` labelled `AWSPENDING` only: the new key verifies
    /// everywhere before anything signs with it. With a `field`, the other
    /// fields of the current JSON object are kept.
    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        let client = self.client().await?;
        let token = uuid::Uuid::new_v4().to_string();
        let secret = &self.inner.secret_id;
        let request = client
            .put_secret_value()
            .secret_id(secret)
            .client_request_token(&token)
            .version_stages(AWSPENDING);
        let text = std::str::from_utf8(material.expose_secret());
        let request = match (&self.inner.field, text) {
            (None, Ok(text)) => request.secret_string(text),
            (None, Err(_)) => request.secret_binary(Blob::new(material.expose_secret().to_vec())),
            (Some(field), Err(_)) => {
                return Err(ProviderError::invalid(format!(
                    "the new key is not UTF-8 text, so it cannot go into JSON field `{field}` of AWS secret `{secret}`; \
                     generate a text key or leave `field` out"
                )));
            }
            (Some(field), Ok(text)) => {
                let mut object = match self.current_string(client).await? {
                    None => JsonSecret::from_value(Value::Object(Map::new())),
                    Some(current) => JsonSecret::parse(&current).map_err(|problem| {
                        ProviderError::invalid(format!(
                            "the current version of AWS secret `{secret}` {problem}, so field `{field}` cannot be set"
                        ))
                    })?,
                };
                let Value::Object(map) = object.value_mut() else {
                    return Err(ProviderError::invalid(format!(
                        "the current version of AWS secret `{secret}` is not a JSON object, so field `{field}` cannot be set"
                    )));
                };
                map.insert(field.clone(), Value::String(text.to_owned()));
                let body = Zeroizing::new(object.value().to_string());
                request.secret_string(body.as_str())
            }
        };
        let output = self.call("PutSecretValue", request.send()).await?;
        let id = output.version_id().unwrap_or(&token).to_owned();
        // PutSecretValue does not say when; GetSecretValue does (best effort).
        let created = match self.read_version(client, &id).await {
            Ok(held) => {
                let created = held.created;
                self.inner.cache.lock().await.held.insert(id.clone(), held);
                created
            }
            Err(_) => None,
        };
        Ok(Published::new(id, created))
    }

    /// Moves `AWSCURRENT` to version `id` (AWS moves `AWSPREVIOUS` to the
    /// version that was current), then takes `AWSPENDING` off it, so a later
    /// `RotateSecret` does not find a rotation in progress.
    async fn promote(&self, id: &str) -> Result<(), ProviderError> {
        let client = self.client().await?;
        let secret = &self.inner.secret_id;
        let stages = self.describe(client).await?;
        let labelled = |version: &str, label: &str| {
            stages
                .get(version)
                .is_some_and(|labels| labels.iter().any(|l| l == label))
        };
        let current = stages.keys().find(|v| labelled(v, AWSCURRENT)).cloned();
        if current.as_deref() != Some(id) {
            let request = client
                .update_secret_version_stage()
                .secret_id(secret)
                .version_stage(AWSCURRENT)
                .move_to_version_id(id)
                .set_remove_from_version_id(current)
                .send();
            self.call("UpdateSecretVersionStage", request).await?;
        }
        if labelled(id, AWSPENDING) {
            let request = client
                .update_secret_version_stage()
                .secret_id(secret)
                .version_stage(AWSPENDING)
                .remove_from_version_id(id)
                .send();
            self.call("UpdateSecretVersionStage", request).await?;
        }
        Ok(())
    }
}

impl fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsProvider")
            .field("source", &self.inner.display)
            .field("api_calls", &self.api_calls())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(uri: &str) -> Result<AwsProvider, ProviderError> {
        AwsProvider::from_source(&KeySource::parse(uri)?)
    }

    #[test]
    fn a_name_with_slashes_is_one_secret_id() {
        let p = provider("aws-sm://prod/myapp/signing-key?region=eu-west-1").unwrap();
        assert_eq!(p.secret_id(), "prod/myapp/signing-key");
        assert_eq!(p.source(), "aws-sm://prod/myapp/signing-key?region=eu-west-1");
    }

    #[test]
    fn an_arn_is_one_secret_id_and_gives_the_region() {
        let arn = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:team/app-key-AbCdEf";
        let p = provider(&format!("aws-sm://{arn}")).unwrap();
        assert_eq!(p.secret_id(), arn);
        assert!(p.source().contains("region=ap-south-1"), "{}", p.source());
        let p = provider(&format!("aws-sm://{arn}?region=us-west-2")).unwrap();
        assert!(p.source().contains("region=us-west-2"), "an explicit region wins");
    }

    #[test]
    fn percent_escapes_in_the_id_are_decoded() {
        let p = provider("aws-sm://my%20secret%3Fx?field=key").unwrap();
        assert_eq!(p.secret_id(), "my secret?x");
    }

    #[test]
    fn source_reads_back_the_same_secret_whatever_its_id_and_parameters() {
        let awkward = [
            "a b", "100%", "x?y", "k&e=y+s", "#1", "é", "/lead", "trail/", "a//b", "%2F", "?&=+# ",
        ];
        for id in awkward {
            for value in awkward {
                let built = AwsProvider::builder()
                    .secret_id(id)
                    .region(value)
                    .field(value)
                    .endpoint_url(format!("http://127.0.0.1:4566/{value}"))
                    .build()
                    .unwrap();
                let shown = built.source();
                let again = provider(&shown).unwrap_or_else(|e| panic!("{shown}: {e}"));
                assert_eq!(again.secret_id(), id, "{shown}");
                assert_eq!(again.inner.settings.region.as_deref(), Some(value), "{shown}");
                assert_eq!(again.inner.field.as_deref(), Some(value), "{shown}");
                assert_eq!(
                    again.inner.settings.endpoint, built.inner.settings.endpoint,
                    "{shown}"
                );
                assert_eq!(again.source(), shown);
            }
        }
    }

    #[test]
    fn unknown_parameters_are_config_errors() {
        let err = provider("aws-sm://app?regoin=eu-west-1").unwrap_err();
        assert_eq!(err.kind(), ProviderErrorKind::Config);
        assert!(err.to_string().contains("regoin"), "{err}");
    }

    #[test]
    fn empty_ids_fields_and_bad_endpoints_are_config_errors() {
        for uri in [
            "aws-sm://",
            "aws-sm://?region=eu-west-1",
            "aws-sm://app?field=",
            "aws-sm://app?endpoint=localhost:4566",
            "aws-sm://app?endpoint=http://user:pw-s3cr3t@localhost:4566",
        ] {
            let err = provider(uri).unwrap_err();
            assert_eq!(err.kind(), ProviderErrorKind::Config, "{uri}: {err}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
        assert!(provider("aws-sm://app?endpoint=http://localhost:4566/a@b").is_ok());
    }

    #[test]
    fn debug_and_source_never_show_credentials() {
        let p = AwsProvider::builder()
            .secret_id("app")
            .credentials("AKIAEXAMPLEKEYID", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            .build()
            .unwrap();
        let shown = format!("{p:?} {}", p.source());
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("AKIAEXAMPLEKEYID"), "{shown}");
    }

    #[test]
    fn labels_give_stages_and_a_finished_rotation_is_current() {
        let labels = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(stage_of(&labels(&["AWSCURRENT"])), Some(Stage::Current));
        assert_eq!(
            stage_of(&labels(&["AWSPENDING", "AWSCURRENT"])),
            Some(Stage::Current)
        );
        assert_eq!(stage_of(&labels(&["AWSPENDING"])), Some(Stage::Pending));
        assert_eq!(stage_of(&labels(&["AWSPREVIOUS"])), Some(Stage::Previous));
        assert_eq!(stage_of(&labels(&["custom"])), None);
        assert_eq!(stage_of(&[]), None);
    }

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
