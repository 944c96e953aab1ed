//! The background task that keeps a [`Keyring`] in step with its provider.

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

mod builder;
mod rotating;
mod task;

pub use builder::RefresherBuilder;
pub use rotating::RotationStatus;
use task::{Task, TaskEnd};

use crate::{
    FirstSeen, KeyProvider, KeySet, KeyVersion, Keyring, Policy, PolicyError, ProviderError,
    ProviderErrorKind, Reach, Role,
};

/// Default time between two polls of the store.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Margin for clock skew between replicas and the store, added to the default
/// activation delay of shared stores.
pub const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(30);

/// Why a refresh produced no key set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The provider answered, but the policy refused the result.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The provider did not answer in time.
    #[error("the source did not answer within {0:?}")]
    Timeout(Duration),
    /// The provider or the policy panicked; the panic was caught and the
    /// refresher goes on.
    #[error("the refresh panicked: {0}")]
    Panicked(String),
    /// The rotation period ([`RefresherBuilder::rotate_every`]) was refused
    /// at start, or an automatic rotation failed (the last good key set
    /// keeps serving).
    #[error(transparent)]
    Rotation(#[from] crate::rotation::RotationError),
}

/// The refresher could not get a first good key set.
#[derive(Debug, thiserror::Error)]
#[error("no usable key set from {source_name} after {attempts} attempt(s): {last}")]
pub struct StartError {
    /// The provider's source name.
    pub source_name: String,
    /// How many fetches were tried.
    pub attempts: u32,
    /// The last failure.
    #[source]
    pub last: RefreshError,
}

impl StartError {
    /// What kind of failure it was, for a binding's error object (Python's
    /// `KeyrollError.kind`, Node's `KeyrollError.kind`).
    pub fn kind(&self) -> StartFailure {
        StartFailure::of_refresh(&self.last)
    }

    /// The message every binding shows: the policy's reason for a weak or
    /// empty key set as it is, the source and attempts otherwise.
    pub fn reason(&self) -> String {
        match &self.last {
            RefreshError::Policy(policy) => policy.to_string(),
            _ => self.to_string(),
        }
    }
}

/// Why no key ring could be opened ([`StartError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartFailure {
    /// The URI or an option was refused.
    Config,
    /// The store answered without a usable key set.
    Keys,
    /// The store did not answer.
    Unavailable,
}

impl StartFailure {
    /// The kind of a failed read of the store: what every binding raises for
    /// it (a setting, the keys, or the store not answering).
    pub fn of_refresh(error: &RefreshError) -> Self {
        match error {
            RefreshError::Policy(_) => Self::Keys,
            // The rotation period, refused at start: a setting.
            RefreshError::Rotation(_) => Self::Config,
            RefreshError::Provider(error) => Self::of_provider(error.kind()),
            _ => Self::Unavailable,
        }
    }

    /// The kind of a store's failure.
    pub fn of_provider(kind: ProviderErrorKind) -> Self {
        match kind {
            ProviderErrorKind::Config | ProviderErrorKind::Unsupported => Self::Config,
            ProviderErrorKind::Invalid => Self::Keys,
            _ => Self::Unavailable,
        }
    }

    /// `config`, `keys` or `unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Keys => "keys",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Health of a refresher, for readiness checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// The last refresh succeeded.
    Healthy,
    /// The last refresh failed; the last good key set keeps serving.
    Degraded,
    /// The store has not confirmed the keys for longer than
    /// [`fail_closed_after`](RefresherBuilder::fail_closed_after): the keyring
    /// has failed closed and nothing verifies until the store answers, or the
    /// store revoked the signing key without a usable replacement.
    Stale,
    /// No refresher keeps the keys current any more: its last handle was
    /// dropped without [`Refresher::shutdown`], its task ended, or it was shut
    /// down. The reason is in [`Status::last_error`]; the stale limit, if
    /// set, still applies.
    Stopped,
}

impl Health {
    /// `healthy`, `degraded`, `stale` or `stopped`: the name every door
    /// shows (metrics labels, the bindings' status).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Stale => "stale",
            Self::Stopped => "stopped",
        }
    }
}

/// A snapshot of a refresher's state. Contains key ids and error messages,
/// never key material.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// The provider's source name.
    pub source: String,
    /// Healthy or degraded.
    pub health: Health,
    /// The keyring's generation.
    pub generation: u64,
    /// When a refresh last succeeded.
    pub last_success: SystemTime,
    /// When a refresh was last attempted.
    pub last_attempt: SystemTime,
    /// Why the last refresh failed, while degraded, or why the refresher
    /// stopped.
    pub last_error: Option<String>,
    /// Failed refreshes since the last success.
    pub consecutive_failures: u32,
    /// Who else reads the store ([`KeyProvider::reach`]): with
    /// [`Reach::Shared`] and a zero activation delay, the first replica to
    /// poll a new key signs with it before the others can verify it.
    pub reach: Reach,
    /// The activation delay in force ([`RefresherBuilder::effective_policy`]).
    pub activation_delay: Duration,
    /// Automatic rotation ([`RefresherBuilder::rotate_every`]), when on.
    pub rotation: Option<RotationStatus>,
}

impl Status {
    /// How long ago the key set was last confirmed by the store.
    pub fn staleness(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.last_success)
            .unwrap_or_default()
    }
}

/// Keeps a [`Keyring`] up to date from a [`KeyProvider`] in the background.
///
/// Polls every interval ± jitter, refreshes at once on push notifications,
/// re-evaluates the policy at every activation or expiry moment, backs off on
/// errors and never swaps to a failed or refused result: on any failure the
/// last good key set keeps serving and [`status`](Refresher::status) says so.
/// Cloning gives another handle to the same task; the task stops when
/// [`shutdown`](Refresher::shutdown) is called or the last handle is dropped.
///
/// Dropping the last handle without `shutdown` is a mistake that would freeze
/// every signer's keys silently, so it is loud: an error is logged, the
/// keyring records why ([`Keyring::stopped`]) and its status turns
/// [`Health::Stopped`]; the stale limit
/// ([`fail_closed_after`](RefresherBuilder::fail_closed_after)) still closes
/// the keyring in time. Keep the refresher for as long as its keyring serves.
/// A panic in the provider or the policy is caught and reported as a failed
/// refresh ([`RefreshError::Panicked`]); should the task end anyway, the
/// status says [`Health::Stopped`] with the reason.
#[derive(Clone)]
pub struct Refresher {
    inner: Arc<Inner>,
}

struct Inner {
    keyring: Keyring,
    status: Arc<Mutex<Status>>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    source: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.keyring.stopped().is_none() {
            tracing::error!(
                source = %self.source,
                generation = self.keyring.generation(),
                "the refresher was dropped without shutdown(): its keys are no longer refreshed and every signer serves them frozen"
            );
            self.keyring.set_stopped(
                "the refresher was dropped without shutdown(); the keys are no longer refreshed".to_owned(),
            );
        }
        self.stop.send_replace(true);
    }
}

impl Refresher {
    /// The keyring this refresher keeps current.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// A snapshot of the refresher's state, for health checks.
    pub fn status(&self) -> Status {
        let mut status = lock(&self.inner.status).clone();
        let keyring = &self.inner.keyring;
        status.generation = keyring.generation();
        if keyring.is_closed() {
            status.health = Health::Stale;
        } else if let Some(reason) = keyring.stopped() {
            status.health = Health::Stopped;
            status.last_error = Some(reason.to_owned());
        }
        status
    }

    /// Asks for a refresh now instead of at the next poll.
    pub fn refresh_now(&self) {
        self.inner.wake.notify_one();
    }

    /// Stops the background task and waits for it to finish.
    pub async fn shutdown(&self) {
        self.inner
            .keyring
            .set_stopped("the refresher was shut down".to_owned());
        self.inner.stop.send_replace(true);
        let handle = lock(&self.inner.task).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

impl fmt::Debug for Refresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher")
            .field("status", &self.status())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fetches once (at most the `versions` the policy uses) in a task of its
/// own, so a panicking provider is reported as a failed refresh instead of
/// ending the refresher.
async fn fetch(
    provider: &Arc<dyn KeyProvider>,
    versions: usize,
    timeout: Duration,
) -> Result<Vec<KeyVersion>, RefreshError> {
    let provider = Arc::clone(provider);
    let fetching = tokio::spawn(async move { provider.fetch_newest(versions).await });
    let abort = fetching.abort_handle();
    match tokio::time::timeout(timeout, fetching).await {
        Ok(Ok(result)) => Ok(result?),
        Ok(Err(joined)) => Err(RefreshError::Panicked(match joined.try_into_panic() {
            Ok(payload) => panic_message(payload.as_ref()),
            Err(_) => "the fetch was cancelled".to_owned(),
        })),
        Err(_) => {
            abort.abort();
            Err(RefreshError::Timeout(timeout))
        }
    }
}

/// The first key of `set` that fails the policy's strength rule.
fn weak_key(policy: &Policy, set: &KeySet) -> Option<PolicyError> {
    set.keys().iter().enumerate().find_map(|(position, key)| {
        policy
            .strength
            .check(key.material())
            .err()
            .map(|weakness| PolicyError::WeakKey {
                id: crate::policy::weak_key_name(key.id(), key.material(), position),
                weakness,
            })
    })
}

/// Evaluates the policy, reporting a panic as a failed refresh.
fn evaluate(
    policy: &Policy,
    versions: &[KeyVersion],
    first_seen: &FirstSeen,
    now: SystemTime,
) -> Result<KeySet, RefreshError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| policy.evaluate(versions, first_seen, now)))
        .map_err(|payload| RefreshError::Panicked(panic_message(payload.as_ref())))?
        .map_err(RefreshError::Policy)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn log_key_set(source: &str, set: &KeySet, generation: u64) {
    let now = SystemTime::now();
    let ids = |role: Role| {
        set.keys()
            .iter()
            .filter(|k| k.role_at(now) == role)
            .map(|k| k.id())
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(
        source = %source,
        generation,
        current = %ids(Role::Current),
        pending = %ids(Role::Pending),
        fallback = %ids(Role::Fallback),
        "key set installed"
    );
}
