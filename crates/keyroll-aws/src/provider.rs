//! The provider: versions and stage labels of one secret in, key versions out.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use keyroll_core::remote::{FetchedVersions, INSECURE_HTTP, insecure_http_param};
use keyroll_core::{
    Capabilities, FromSource, KeyMaterial, KeyProvider, KeySource, KeyVersion, ProviderError,
    ProviderErrorKind, Published, Reach, Stage, async_trait,
};
use tokio::sync::{Mutex, OnceCell};
use zeroize::Zeroizing;

use crate::AwsProviderBuilder;
use crate::builder::{Settings, build_client};
use crate::errors::provider_error;
use crate::payload::{material_of, system_time};

const AWSCURRENT: &str = "AWSCURRENT";
const AWSPENDING: &str = "AWSPENDING";
/// keyroll's label on a version `publish_if` is writing, until it moves
/// `AWSPENDING` there.
const PUBLISHING: &str = "keyroll-publishing";
const AWSPREVIOUS: &str = "AWSPREVIOUS";

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
    settings: Settings,
    /// What `source()` shows: id, region, field, endpoint; never credentials.
    display: String,
    /// Built on first use: loading the AWS configuration is async.
    client: OnceCell<Client>,
    /// Held for a whole fetch, so concurrent fetches make one set of calls.
    cache: Mutex<Cache>,
    calls: AtomicU64,
}

/// What the last successful fetch saw.
#[derive(Default)]
struct Cache {
    /// `DescribeSecret`'s `VersionIdsToStages` of the last fetch, and how
    /// many unlabelled versions it reported at most.
    stages: Option<(HashMap<String, Vec<String>>, usize)>,
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

impl AwsProvider {
    /// A provider from checked settings ([`AwsProviderBuilder::build`]).
    pub(crate) fn new(
        secret_id: String,
        field: Option<String>,
        max_deprecated: Option<usize>,
        settings: Settings,
        display: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                secret_id,
                field,
                max_deprecated,
                settings,
                display,
                client: OnceCell::new(),
                cache: Mutex::new(Cache::default()),
                calls: AtomicU64::new(0),
            }),
        }
    }

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
        let builder = Self::builder().secret_id(format!("{}{}", source.authority(), source.path()));
        let builder: AwsProviderBuilder = source.apply_params(
            builder,
            &[
                ("region", |b, v| b.region(v)),
                ("field", |b, v| b.field(v)),
                ("endpoint", |b, v| b.endpoint(v)),
            ],
        );
        builder.allow_insecure_http(insecure_http_param(source)?).build()
    }
}

#[async_trait]
impl KeyProvider for AwsProvider {
    /// `DescribeSecret`; when the labels (or `versions`) changed since the
    /// last fetch, also `ListSecretVersionIds` and `GetSecretValue` for each
    /// version not held yet. Reports the labelled versions and as many
    /// unlabelled ones as the policy has fallbacks (`versions` less the
    /// current and pending ones), unless the builder set
    /// [`max_deprecated`](AwsProviderBuilder::max_deprecated).
    async fn fetch_newest(&self, versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        let max_deprecated = self.inner.max_deprecated.unwrap_or(versions.saturating_sub(2));
        let client = self.client().await?;
        let mut cache = self.inner.cache.lock().await;
        let stages = (self.describe(client).await?, max_deprecated);
        if cache.stages.as_ref() == Some(&stages) && !cache.versions.is_empty() {
            return Ok(cache.versions.clone());
        }

        let mut listed = self.list(client).await?;
        listed.sort_by(|a, b| newest_first((a.created, a.stage, a.order), (b.created, b.stage, b.order)));
        // Labelled versions, and the newest few that lost their labels.
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

    fn capabilities(&self) -> Capabilities {
        Capabilities::READ_ONLY
            .with_publish()
            .with_promote()
            .with_compare_and_set()
    }

    fn source(&self) -> String {
        self.inner.display.clone()
    }

    /// `PutSecretValue` labelled `AWSPENDING` only: the new key verifies
    /// everywhere before anything signs with it. With a `field`, the other
    /// fields of the current JSON object are kept.
    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        self.put(material, &uuid::Uuid::new_v4().to_string(), AWSPENDING)
            .await
    }

    /// `PutSecretValue` with a `ClientRequestToken` derived from the secret
    /// and the version `expected` (the new version's id): every writer that
    /// read the same newest version sends the same token, and AWS makes one
    /// version of it — a second writer's different value is refused
    /// (`ResourceExistsException`, a [`Conflict`](ProviderErrorKind::Conflict)).
    /// A version already holding the token is a conflict before any write,
    /// and so is any version when `expected` is `None`. With `expected`
    /// `None` and no secret of that name, the secret is created with the
    /// key (`CreateSecret`, the same token): of many writers, one creates it
    /// and the others are refused. Needs `secretsmanager:CreateSecret` for
    /// that.
    ///
    /// The version is written with a label of keyroll's own, then given
    /// `AWSPENDING`: moto (not AWS) lets a second writer overwrite a version
    /// labelled `AWSPENDING` under the same token.
    async fn publish_if(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        let token = successor_token(&self.inner.secret_id, expected);
        let client = self.client().await?;
        let lost = || {
            ProviderError::new(
                ProviderErrorKind::Conflict,
                format!(
                    "AWS secret `{}` already has the version that follows {}: another writer published it. \
                     Nothing was written",
                    self.inner.secret_id,
                    expected.unwrap_or("its empty state")
                ),
            )
        };
        if expected.is_none() {
            // No secret yet: the first key creates it, once.
            match self.describe(client).await {
                Err(error) if error.kind() == ProviderErrorKind::NotFound => {
                    return match self.create(material, &token).await {
                        Err(error) if error.kind() == ProviderErrorKind::Conflict => Err(lost()),
                        done => done,
                    };
                }
                described => drop(described?),
            }
        }
        let listed = self.list(client).await?;
        // Over no version: only while the secret holds none (a first writer's
        // version is refused to the others by its token).
        if listed
            .iter()
            .any(|listed| listed.id == token || expected.is_none())
        {
            return Err(lost());
        }
        let published = match self.put(material, &token, PUBLISHING).await {
            Err(error) if error.kind() == ProviderErrorKind::Conflict => return Err(lost()),
            done => done?,
        };
        let request = client
            .update_secret_version_stage()
            .secret_id(&self.inner.secret_id)
            .version_stage(AWSPENDING)
            .move_to_version_id(&published.id)
            .set_remove_from_version_id(self.labelled(client, AWSPENDING).await?)
            .send();
        self.call("UpdateSecretVersionStage", request).await?;
        let request = client
            .update_secret_version_stage()
            .secret_id(&self.inner.secret_id)
            .version_stage(PUBLISHING)
            .remove_from_version_id(&published.id)
            .send();
        self.call("UpdateSecretVersionStage", request).await?;
        Ok(published)
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
mod tests;
mod write;

use write::successor_token;
