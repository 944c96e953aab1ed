//! The one trait every key store implements.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{KeyMaterial, KeySource, KeyVersion};

/// A source of key versions: an environment variable, a file, a secret store.
///
/// Two methods are required: [`fetch`](KeyProvider::fetch) reports what the
/// store holds, and [`reach`](KeyProvider::reach) says who else reads it (a
/// shared store needs staged activation, so no provider gets it by default).
/// Providers never decide which version signs; the
/// [`Policy`](crate::Policy) does, once, in the core.
#[async_trait]
pub trait KeyProvider: fmt::Debug + Send + Sync + 'static {
    /// Reads the versions the store holds, **newest first**.
    ///
    /// Every provider answers the same for a store without keys: a secret,
    /// file or variable that does not exist is
    /// [`NotFound`](ProviderErrorKind::NotFound); one that exists but holds no
    /// key (no versions, an empty value, a file of comments) is
    /// [`Invalid`](ProviderErrorKind::Invalid). So `Ok` always holds at least
    /// one version, and `keyroll check` exits 2 for a missing source and 1
    /// for an empty one.
    ///
    /// Disabled and destroyed versions may be included (with their state) or
    /// left out; the policy never lets them verify either way.
    ///
    /// `versions` is how many versions the policy in use can use at most
    /// ([`Policy::versions_used`](crate::Policy::versions_used): the signing
    /// key, one pending key and the fallbacks). Providers that read versions
    /// one request at a time (Vault, AWS, GCP) read no more than that many
    /// enabled versions, newest first, unless configured with their own cap;
    /// the others may report more. The [`Refresher`](crate::Refresher)
    /// passes its policy's number, so `max_fallbacks(10)` gets ten fallbacks
    /// from every store.
    async fn fetch_newest(&self, versions: usize) -> Result<Vec<KeyVersion>, ProviderError>;

    /// [`fetch_newest`](Self::fetch_newest) with what the default policy
    /// uses.
    async fn fetch(&self) -> Result<Vec<KeyVersion>, ProviderError> {
        self.fetch_newest(crate::Policy::default().versions_used()).await
    }

    /// Starts watching the store for changes, for providers that can push
    /// (files). The refresher calls it once and refreshes as soon as the
    /// returned watch fires, polling stays on as a backstop.
    fn watch(&self) -> Result<Option<ChangeWatch>, ProviderError> {
        Ok(None)
    }

    /// Whether many processes read this store independently (a secret store
    /// shared by a fleet) or it is local to this process. Decides the default
    /// activation delay: a shared store needs staged activation.
    fn reach(&self) -> Reach;

    /// How long the store itself may take to deliver a change to every
    /// reader, beyond their polling (a Kubernetes volume: the kubelet's sync
    /// period and cache). Added to the default activation delay of a shared
    /// source; zero by default.
    fn propagation_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// A short name of the source for logs and status, such as
    /// `file:///etc/keyroll/keys`. Must not contain credentials.
    fn source(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }

    /// What this provider can do with its store besides reading it: callers
    /// (`keyroll::ops::rotate`) check it before they write anything, and the
    /// conformance suite holds every provider to it. Read-only by default;
    /// a provider that overrides [`rotate`](Self::rotate),
    /// [`promote`](Self::promote), [`disable`](Self::disable) or
    /// [`watch`](Self::watch) declares it here.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Publishes `material` as the store's newest version (what `keyroll
    /// rotate` does), for stores keyroll can write. When it starts signing is
    /// still the policy's decision (staged activation). The default refuses
    /// with [`ProviderErrorKind::Unsupported`].
    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        let _ = material;
        Err(ProviderError::new(
            ProviderErrorKind::Unsupported,
            format!(
                "{} cannot be rotated by keyroll; rotate it in the store itself",
                self.source()
            ),
        ))
    }

    /// Publishes `material` as the store's newest version **only if** the
    /// newest version the store holds is still `expected` (`None`: only if
    /// the store holds no version yet), with the store's own compare-and-set,
    /// so that many writers acting on the same reading make exactly one
    /// change. A writer that lost gets
    /// [`ProviderErrorKind::Conflict`] and nothing was written: it re-reads
    /// and sees the winner's key. Stores that declare
    /// [`Capabilities::compare_and_set`] implement it; the default refuses
    /// with [`ProviderErrorKind::Unsupported`].
    async fn publish_if(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        let _ = (material, expected);
        Err(ProviderError::new(
            ProviderErrorKind::Unsupported,
            format!(
                "{} has no compare-and-set: writers on many hosts could each publish a key",
                self.source()
            ),
        ))
    }

    /// Makes version `id` the store's current one, for stores with stage
    /// labels (`keyroll rotate --promote`). Staged activation still applies:
    /// the policy holds a newly current version verify-only for the activation
    /// delay. The default refuses with [`ProviderErrorKind::Unsupported`].
    async fn promote(&self, id: &str) -> Result<(), ProviderError> {
        Err(ProviderError::new(
            ProviderErrorKind::Unsupported,
            format!("{} has no stages to promote version {id} in", self.source()),
        ))
    }

    /// Disables version `id` in the store, for stores with version states
    /// (`keyroll rotate --disable-old` disables the versions the policy has
    /// retired). The default refuses with [`ProviderErrorKind::Unsupported`].
    async fn disable(&self, id: &str) -> Result<(), ProviderError> {
        Err(ProviderError::new(
            ProviderErrorKind::Unsupported,
            format!("{} cannot disable version {id}", self.source()),
        ))
    }
}

/// A provider that opens from a key source URI of its own scheme: how a store
/// registers with `keyroll::open`. The facade's table of stores lists each
/// implementer once, with its cargo feature.
pub trait FromSource: KeyProvider + Sized {
    /// The URI scheme, such as `file` or `aws-sm`.
    const SCHEME: &'static str;

    /// Opens the provider `source` names.
    ///
    /// # Errors
    /// [`ProviderErrorKind::Config`] for a source of another scheme
    /// ([`KeySource::expect_scheme`]), an unknown parameter or settings the
    /// provider refuses.
    fn from_source(source: &KeySource) -> Result<Self, ProviderError>;

    /// Opens the provider the URI `uri` names: [`KeySource::parse`], then
    /// [`from_source`](Self::from_source).
    ///
    /// # Errors
    /// As [`KeySource::parse`] and [`from_source`](Self::from_source).
    fn from_uri(uri: &str) -> Result<Self, ProviderError> {
        Self::from_source(&KeySource::parse(uri)?)
    }
}

/// What [`KeyProvider::rotate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The new version's id.
    pub id: String,
    /// When the store says it was created, if it says.
    pub created: Option<SystemTime>,
}

impl Published {
    /// A published version.
    pub fn new(id: impl Into<String>, created: Option<SystemTime>) -> Self {
        Self {
            id: id.into(),
            created,
        }
    }
}

#[async_trait]
impl<P: KeyProvider + ?Sized> KeyProvider for Box<P> {
    async fn fetch_newest(&self, versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        (**self).fetch_newest(versions).await
    }
    fn watch(&self) -> Result<Option<ChangeWatch>, ProviderError> {
        (**self).watch()
    }
    fn reach(&self) -> Reach {
        (**self).reach()
    }
    fn propagation_delay(&self) -> Duration {
        (**self).propagation_delay()
    }
    fn source(&self) -> String {
        (**self).source()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        (**self).rotate(material).await
    }
    async fn publish_if(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        (**self).publish_if(material, expected).await
    }
    async fn promote(&self, id: &str) -> Result<(), ProviderError> {
        (**self).promote(id).await
    }
    async fn disable(&self, id: &str) -> Result<(), ProviderError> {
        (**self).disable(id).await
    }
}

/// What a provider can do with its store besides reading its versions
/// ([`KeyProvider::capabilities`]), after OpenDAL's `Capability`: declared
/// once by the provider, read by whoever would act.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`KeyProvider::watch`] pushes changes.
    pub push: bool,
    /// [`KeyProvider::rotate`] publishes a new version.
    pub publish: bool,
    /// [`KeyProvider::promote`] makes a version the current one (stores with
    /// stage labels).
    pub promote: bool,
    /// [`KeyProvider::disable`] disables a version (stores with states).
    pub disable: bool,
    /// [`KeyProvider::publish_if`] publishes only over the version expected
    /// (the store's compare-and-set): what rotating from many hosts at once
    /// needs.
    pub compare_and_set: bool,
}

impl Capabilities {
    /// Reading only.
    pub const READ_ONLY: Self = Self {
        push: false,
        publish: false,
        promote: false,
        disable: false,
        compare_and_set: false,
    };

    /// Also pushes changes.
    #[must_use]
    pub const fn with_push(mut self) -> Self {
        self.push = true;
        self
    }

    /// Also publishes new versions.
    #[must_use]
    pub const fn with_publish(mut self) -> Self {
        self.publish = true;
        self
    }

    /// Also promotes versions.
    #[must_use]
    pub const fn with_promote(mut self) -> Self {
        self.promote = true;
        self
    }

    /// Also disables versions.
    #[must_use]
    pub const fn with_disable(mut self) -> Self {
        self.disable = true;
        self
    }

    /// Also publishes conditionally (compare-and-set).
    #[must_use]
    pub const fn with_compare_and_set(mut self) -> Self {
        self.compare_and_set = true;
        self
    }
}

/// Who else reads the same store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reach {
    /// Only this process (environment variables, a developer's key file).
    Local,
    /// A fleet of replicas reads it at different moments (Vault, AWS, GCP).
    Shared,
}

/// Change notifications from a provider that can push.
///
/// Holds whatever keeps the underlying watcher alive; dropping it stops the
/// watch.
pub struct ChangeWatch {
    changes: mpsc::Receiver<()>,
    _guard: Box<dyn Send + Sync>,
}

impl ChangeWatch {
    /// Wraps a channel that receives `()` on every change, and a guard that
    /// keeps the watcher running while the watch lives.
    pub fn new(changes: mpsc::Receiver<()>, guard: impl Send + Sync + 'static) -> Self {
        Self {
            changes,
            _guard: Box::new(guard),
        }
    }

    /// Waits for the next change. Returns `false` when the watcher has stopped
    /// for good.
    pub async fn changed(&mut self) -> bool {
        self.changes.recv().await.is_some()
    }

    /// Drops every notification already queued, so a burst of events causes
    /// one refresh.
    pub fn drain(&mut self) {
        while self.changes.try_recv().is_ok() {}
    }
}

impl fmt::Debug for ChangeWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeWatch").finish_non_exhaustive()
    }
}

/// What kind of failure a provider hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderErrorKind {
    /// The secret, file or variable does not exist.
    NotFound,
    /// The store refused access.
    PermissionDenied,
    /// The store could not be reached or failed (timeouts, 5xx). Usually transient.
    Unavailable,
    /// The store answered with data that is not a usable key set (malformed
    /// file, bad checksum, empty secret).
    Invalid,
    /// The provider is configured wrongly (bad URI, missing setting).
    Config,
    /// The provider cannot do what was asked (rotating a read-only source).
    Unsupported,
    /// A write was refused because the store changed meanwhile (a
    /// check-and-set rotation raced another one). Nothing was written; never
    /// retry it blindly.
    Conflict,
}

impl ProviderErrorKind {
    /// What an HTTP error status from a store's API means, the one rule every
    /// remote provider (Vault, AWS, GCP) applies when the store's own error
    /// code does not say more:
    ///
    /// | Status | Kind |
    /// |---|---|
    /// | 401, 403 | [`PermissionDenied`](Self::PermissionDenied) |
    /// | 404 | [`NotFound`](Self::NotFound) |
    /// | 409, 412 | [`Conflict`](Self::Conflict): a write raced another |
    /// | 408, 429, 5xx | [`Unavailable`](Self::Unavailable): transient, retried |
    /// | any other 4xx, 3xx | [`Config`](Self::Config): the request as configured is refused (a wrong mount, endpoint or parameter); retrying the same request cannot help |
    /// | anything else | [`Invalid`](Self::Invalid): not an answer the API gives |
    ///
    /// ```
    /// use keyroll_core::ProviderErrorKind;
    /// assert_eq!(ProviderErrorKind::from_http_status(403), ProviderErrorKind::PermissionDenied);
    /// assert_eq!(ProviderErrorKind::from_http_status(503), ProviderErrorKind::Unavailable);
    /// assert_eq!(ProviderErrorKind::from_http_status(400), ProviderErrorKind::Config);
    /// ```
    pub fn from_http_status(status: u16) -> Self {
        match status {
            401 | 403 => Self::PermissionDenied,
            404 => Self::NotFound,
            409 | 412 => Self::Conflict,
            408 | 429 | 500..=599 => Self::Unavailable,
            300..=499 => Self::Config,
            _ => Self::Invalid,
        }
    }
}

impl fmt::Display for ProviderErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::PermissionDenied => "permission denied",
            Self::Unavailable => "store unavailable",
            Self::Invalid => "invalid key data",
            Self::Config => "configuration error",
            Self::Unsupported => "not supported",
            Self::Conflict => "conflict",
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A provider failure. Carries a kind to match on, a message for people (never
/// key material) and the underlying error, if any.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ProviderError {
    kind: ProviderErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl ProviderError {
    /// A new error of `kind`. The message must not contain key material.
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// [`ProviderErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::NotFound, message)
    }

    /// [`ProviderErrorKind::PermissionDenied`].
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::PermissionDenied, message)
    }

    /// [`ProviderErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Unavailable, message)
    }

    /// [`ProviderErrorKind::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Invalid, message)
    }

    /// [`ProviderErrorKind::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Config, message)
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ProviderErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}
