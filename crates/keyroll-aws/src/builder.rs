//! Settings of an [`AwsProvider`], and the SDK client they make.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_secretsmanager::config::SharedHttpClient;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls;
use keyroll_core::remote::{Connection, ConnectionDefaults, INSECURE_HTTP};
use keyroll_core::{FromSource, KeySource, ProviderError};

use crate::AwsProvider;

/// Default connect timeout: a dead endpoint is reported within seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default timeout of one attempt of one API call.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default number of attempts per API call (the first and one retry).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

/// First retry delay; short, so two attempts fit well inside a refresh.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// Settings for an [`AwsProvider`]. Unset settings come from the standard AWS
/// configuration chain (environment, profile, web identity, IMDS).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AwsProviderBuilder {
    secret_id: Option<String>,
    region: Option<String>,
    field: Option<String>,
    connection: Connection,
    credentials: Option<Credentials>,
    sdk_config: Option<SdkConfig>,
    connect_timeout: Option<Duration>,
    max_deprecated: Option<usize>,
}

impl AwsProviderBuilder {
    keyroll_core::option_setters! {
        /// The secret: its name (`prod/myapp/key`) or full ARN.
        secret_id: impl String,
        /// The region. Default: the ARN's region, else the standard chain
        /// (`AWS_REGION`, profile, IMDS).
        region: impl String,
        /// Reads the key from field `name` of a JSON object secret string
        /// (default: the whole secret string, or the secret binary).
        field: impl String,
        /// Starts from an AWS configuration the application already loaded
        /// (`aws_config::load_defaults`), instead of loading one. Region,
        /// endpoint and credentials set on this builder still win; the timeouts
        /// and retries of this builder always apply.
        sdk_config: SdkConfig,
        /// Connect timeout (default [`DEFAULT_CONNECT_TIMEOUT`]).
        connect_timeout: Duration,
        /// How many versions without stage labels to report; 0 reports only
        /// labelled versions. Default: as many as the policy in use keeps as
        /// fallbacks (the number
        /// [`KeyProvider::fetch_newest`](keyroll_core::KeyProvider::fetch_newest) is given, less 2).
        max_deprecated: usize,
    }

    // `endpoint`: a local server such as moto or LocalStack;
    // `AWS_ENDPOINT_URL` is honoured without it.
    keyroll_core::connection_setters!(endpoint, allow_insecure_http, attempt_timeout, max_attempts);

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

    /// Builds the provider. Nothing is sent yet: the AWS configuration is
    /// loaded and the first call made by the first [`fetch`](keyroll_core::KeyProvider::fetch).
    ///
    /// # Errors
    /// [`Config`](keyroll_core::ProviderErrorKind::Config) when the secret id is missing or
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
        let connection = self.connection.check(
            "AWS Secrets Manager",
            "the signed requests",
            ConnectionDefaults {
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                max_attempts: DEFAULT_MAX_ATTEMPTS,
            },
        )?;
        if self.connect_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ProviderError::config("connect_timeout must be more than 0"));
        }
        let endpoint = connection.endpoint.map(|e| e.url().to_owned());
        let region = self.region.or_else(|| region_of_arn(&secret_id));

        // `from_source` takes the id whole (authority and path): split it back.
        let (authority, path) = secret_id.split_at(secret_id.find('/').unwrap_or(secret_id.len()));
        let params: Vec<(&str, &str)> = [
            region.as_deref().map(|r| ("region", r)),
            self.field.as_deref().map(|f| ("field", f)),
            endpoint.as_deref().map(|e| ("endpoint", e)),
            connection.allow_insecure_http.then_some((INSECURE_HTTP, "true")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let display = KeySource::format(<AwsProvider as FromSource>::SCHEME, authority, path, &params);

        Ok(AwsProvider::new(
            secret_id,
            self.field,
            self.max_deprecated,
            Settings {
                region,
                endpoint,
                credentials: self.credentials,
                sdk_config: self.sdk_config,
                connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                attempt_timeout: connection.attempt_timeout,
                max_attempts: connection.max_attempts,
            },
            display,
        ))
    }
}

/// The region inside a Secrets Manager ARN
/// (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`).
fn region_of_arn(id: &str) -> Option<String> {
    let mut parts = id.splitn(6, ':');
    let (arn, _partition, service, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (arn == "arn" && service == "secretsmanager" && !region.is_empty()).then(|| region.to_owned())
}

/// What the SDK client is built from.
#[derive(Clone)]
pub(crate) struct Settings {
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    sdk_config: Option<SdkConfig>,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    max_attempts: u32,
}

/// The SDK's hyper 1 HTTPS client on rustls with ring: the one TLS stack of
/// every keyroll store (see Cargo.toml).
fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

pub(crate) async fn build_client(settings: &Settings) -> Result<Client, ProviderError> {
    let sdk_config = match &settings.sdk_config {
        Some(config) => config.clone(),
        None => {
            let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
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
    let mut config = aws_sdk_secretsmanager::config::Builder::from(&sdk_config);
    if sdk_config.http_client().is_none() {
        // An application's configuration without a client of its own.
        config = config.http_client(https_client());
    }
    let mut config = config
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
    // Again on the client's own configuration: above, the settings steer
    // the default chains (credentials, region) while loading; here they win
    // over an application's `SdkConfig`.
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
