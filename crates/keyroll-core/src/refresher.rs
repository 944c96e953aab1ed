//! The background task that keeps a [`Keyring`] in step with its provider.

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{
    FirstSeen, KeyProvider, KeySet, KeyVersion, Keyring, Policy, PolicyError, ProviderError, Reach, Role,
};

/// Default time between two polls of the store.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Margin for clock skew between replicas and the store, added to the default
/// activation delay of shared stores.
pub const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(30);

/// Quiet period after a push notification before the source is read, so a
/// burst of file events (an editor's save, a symlink swap) causes one read of
/// the finished file.
const SETTLE: Duration = Duration::from_millis(20);

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
}

impl Status {
    /// How long ago the key set was last confirmed by the store.
    pub fn staleness(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.last_success)
            .unwrap_or_default()
    }
}

/// Settings of a [`Refresher`], from [`Refresher::builder`].
#[derive(Debug)]
pub struct RefresherBuilder {
    provider: Arc<dyn KeyProvider>,
    policy: Policy,
    interval: Duration,
    jitter: Option<Duration>,
    fetch_timeout: Duration,
    startup_timeout: Duration,
    backoff_initial: Option<Duration>,
    backoff_max: Option<Duration>,
    clock_skew_margin: Duration,
    fail_closed_after: Option<Duration>,
    break_glass: Option<KeySet>,
}

impl RefresherBuilder {
    /// The provider this builder reads keys from, for the calls a refresher
    /// never makes (`rotate`, `promote`, `disable`) and to ask its
    /// [`reach`](KeyProvider::reach).
    pub fn provider(&self) -> &dyn KeyProvider {
        &*self.provider
    }

    /// The rotation policy (default [`Policy::default`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The builder with its policy changed by `change`.
    fn map_policy(mut self, change: impl FnOnce(Policy) -> Policy) -> Self {
        self.policy = change(std::mem::take(&mut self.policy));
        self
    }

    /// How long a newly published key only verifies before it signs
    /// ([`Policy::activation_delay`]; default: chosen from the provider's
    /// reach, see [`effective_policy`](Self::effective_policy)).
    pub fn activation_delay(self, delay: Duration) -> Self {
        self.map_policy(|policy| policy.with_activation_delay(delay))
    }

    /// How long a superseded key keeps verifying ([`Policy::fallback_window`];
    /// default 30 days).
    pub fn fallback_window(self, window: Duration) -> Self {
        self.map_policy(|policy| policy.with_fallback_window(window))
    }

    /// How many superseded keys keep verifying at most
    /// ([`Policy::max_fallbacks`]; default 4).
    pub fn max_fallbacks(self, max: usize) -> Self {
        self.map_policy(|policy| policy.with_max_fallbacks(max))
    }

    /// Time between polls (default 30 s). Push notifications, where the
    /// provider has them, apply changes sooner; polling stays as a backstop.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Random spread added to or taken from each interval so replicas do not
    /// poll in step (default a tenth of the interval).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Longest wait for one fetch before it counts as failed (default 10 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Longest wait for the first good key set at start (default 10 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// First retry delay after a failure, doubled on each further failure up
    /// to `max` (defaults 500 ms, or the interval when shorter, and the
    /// interval).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = Some(initial);
        self.backoff_max = Some(max);
        self
    }

    /// Fails closed once the store has not confirmed the keys for `limit`:
    /// every verification is then refused ([`Keyring::is_closed`]) and the
    /// status is [`Health::Stale`], so readiness probes take the replica out
    /// of service; the next successful fetch reopens it. Without a limit (the
    /// default) the last good keys keep serving however long the store is
    /// down, with [`Health::Degraded`].
    pub fn fail_closed_after(mut self, limit: Duration) -> Self {
        self.fail_closed_after = Some(limit);
        self
    }

    /// Starts even when the store cannot be reached at start-up (after the
    /// startup timeout; configuration errors still fail), serving `keys` — a
    /// break-glass key set, such as one from an environment variable — with
    /// [`Health::Degraded`], and switches to the store's keys as soon as it
    /// answers. Staleness counts from the start.
    pub fn start_degraded(mut self, keys: KeySet) -> Self {
        self.break_glass = Some(keys);
        self
    }

    /// The margin for clock skew between replicas and the store that the
    /// default activation delay of shared stores includes (default
    /// [`CLOCK_SKEW_MARGIN`]).
    pub fn clock_skew_margin(mut self, margin: Duration) -> Self {
        self.clock_skew_margin = margin;
        self
    }

    fn backoff_initial_value(&self) -> Duration {
        self.backoff_initial
            .unwrap_or(Duration::from_millis(500).min(self.interval))
    }

    fn jitter_value(&self) -> Duration {
        self.jitter.unwrap_or(self.interval / 10)
    }

    /// The policy as it will be applied: an unset activation delay becomes
    /// zero for local sources and, for shared stores, one poll interval plus
    /// jitter plus the clock-skew margin plus the store's own
    /// [propagation delay](KeyProvider::propagation_delay), so every replica
    /// has seen a key before any replica signs with it.
    pub fn effective_policy(&self) -> Policy {
        let mut policy = self.policy.clone();
        if policy.activation_delay.is_none() {
            policy.activation_delay = Some(match self.provider.reach() {
                Reach::Shared => self
                    .interval
                    .saturating_add(self.jitter_value())
                    .saturating_add(self.clock_skew_margin)
                    .saturating_add(self.provider.propagation_delay()),
                _ => Duration::ZERO,
            });
        }
        policy
    }

    /// Fetches and evaluates once, without starting anything: what `keyroll
    /// check` shows.
    pub async fn load_once(&self) -> Result<(Vec<KeyVersion>, KeySet), RefreshError> {
        let versions = self.fetch_once().await?;
        let set = self.evaluate_once(&versions)?;
        Ok((versions, set))
    }

    /// Fetches once, without evaluating, as many versions as the policy
    /// uses: what the store holds, whatever the policy will make of it
    /// (`keyroll agent` copies it to a file whose readers evaluate it).
    pub async fn fetch_once(&self) -> Result<Vec<KeyVersion>, RefreshError> {
        fetch(&self.provider, self.policy.versions_used(), self.fetch_timeout).await
    }

    /// Evaluates `versions`, just fetched, with the
    /// [effective policy](Self::effective_policy) now.
    pub fn evaluate_once(&self, versions: &[KeyVersion]) -> Result<KeySet, RefreshError> {
        let now = SystemTime::now();
        let mut first_seen = FirstSeen::new();
        first_seen.observe(versions, now);
        evaluate(&self.effective_policy(), versions, &first_seen, now)
    }

    /// Waits for a first good key set (retrying with backoff up to the
    /// startup timeout), then starts the background task on the current
    /// tokio runtime. Configuration errors fail at once.
    pub async fn start(mut self) -> Result<Refresher, StartError> {
        let source = self.provider.source();
        let policy = self.effective_policy();
        let deadline = Instant::now() + self.startup_timeout;
        let mut first_seen = FirstSeen::new();
        let mut attempts = 0;
        let mut backoff = self.backoff_initial_value();
        let (versions, set, start_error) = loop {
            attempts += 1;
            let attempt = async {
                let versions = fetch(&self.provider, policy.versions_used(), self.fetch_timeout).await?;
                let now = SystemTime::now();
                first_seen.observe(&versions, now);
                let set = evaluate(&policy, &versions, &first_seen, now)?;
                Ok::<_, RefreshError>((versions, set))
            };
            match attempt.await {
                Ok((versions, set)) => break (Some(versions), set, None),
                Err(error) => {
                    let fatal = matches!(&error, RefreshError::Provider(e) if e.kind() == crate::ProviderErrorKind::Config);
                    if fatal || Instant::now() + backoff > deadline {
                        if let (false, Some(keys)) = (fatal, self.break_glass.take()) {
                            // The break-glass keys sign: they pass the same
                            // strength rule as the store's.
                            if let Some(error) = weak_key(&policy, &keys) {
                                return Err(StartError {
                                    source_name: source,
                                    attempts,
                                    last: RefreshError::Policy(error),
                                });
                            }
                            tracing::error!(
                                source = %source,
                                error = %error,
                                "store unreachable at start; serving the break-glass key set until it answers"
                            );
                            break (None, keys, Some(error));
                        }
                        return Err(StartError {
                            source_name: source,
                            attempts,
                            last: error,
                        });
                    }
                    tracing::warn!(source = %source, error = %error, "no usable key set yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.startup_timeout);
                }
            }
        };
        log_key_set(&source, &set, 1);
        let keyring = Keyring::new(set);
        keyring.confirmed(self.fail_closed_after);
        let now = SystemTime::now();
        let status = Arc::new(Mutex::new(Status {
            source: source.clone(),
            health: if start_error.is_some() {
                Health::Degraded
            } else {
                Health::Healthy
            },
            generation: keyring.generation(),
            last_success: now,
            last_attempt: now,
            last_error: start_error.as_ref().map(ToString::to_string),
            consecutive_failures: u32::from(start_error.is_some()),
            reach: self.provider.reach(),
            activation_delay: policy.activation_delay.unwrap_or_default(),
        }));
        let (stop, stopped) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let changes = match self.provider.watch() {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(source = %source, error = %error, "cannot watch for changes; polling only");
                None
            }
        };
        let backoff_initial = self.backoff_initial_value();
        let task = Task {
            failures: u32::from(start_error.is_some()),
            fail_closed_after: self.fail_closed_after,
            confirmed_at: Instant::now(),
            revoked: false,
            jitter: self.jitter_value(),
            backoff_max: self.backoff_max.unwrap_or(self.interval),
            provider: self.provider,
            policy,
            interval: self.interval,
            fetch_timeout: self.fetch_timeout,
            backoff_initial,
            keyring: keyring.clone(),
            status: Arc::clone(&status),
            first_seen,
            versions,
        };
        // Made before the spawn and moved into the task's future, so that it
        // reports the end even when the runtime drops the task before its
        // first poll.
        let ended = TaskEnd {
            keyring: keyring.clone(),
            status: Arc::clone(&status),
            source: source.clone(),
        };
        let handle = tokio::spawn(task.run(ended, stopped, Arc::clone(&wake), changes));
        Ok(Refresher {
            inner: Arc::new(Inner {
                keyring,
                status,
                wake,
                stop,
                task: Mutex::new(Some(handle)),
                source,
            }),
        })
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
    /// Settings for a refresher of `provider`.
    pub fn builder(provider: impl KeyProvider) -> RefresherBuilder {
        RefresherBuilder {
            provider: Arc::new(provider),
            policy: Policy::default(),
            interval: DEFAULT_INTERVAL,
            jitter: None,
            fetch_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(10),
            backoff_initial: None,
            backoff_max: None,
            clock_skew_margin: CLOCK_SKEW_MARGIN,
            fail_closed_after: None,
            break_glass: None,
        }
    }

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

struct Task {
    failures: u32,
    fail_closed_after: Option<Duration>,
    /// When the store last confirmed the key set.
    confirmed_at: Instant,
    /// The store revoked the signing key with no usable replacement: the
    /// keyring is forced closed until a key set is accepted.
    revoked: bool,
    provider: Arc<dyn KeyProvider>,
    policy: Policy,
    interval: Duration,
    jitter: Duration,
    fetch_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    keyring: Keyring,
    status: Arc<Mutex<Status>>,
    first_seen: FirstSeen,
    /// What the store last reported; `None` while serving a break-glass set
    /// that nothing has been fetched for yet.
    versions: Option<Vec<KeyVersion>>,
}

impl Task {
    async fn run(
        mut self,
        ended: TaskEnd,
        mut stopped: watch::Receiver<bool>,
        wake: Arc<Notify>,
        mut changes: Option<crate::ChangeWatch>,
    ) {
        let source = ended.source.clone();
        let _ended = ended;
        // The poll schedule only moves when the store was asked: waking for an
        // activation or expiry moment must never postpone the next poll.
        let mut poll_at = Instant::now() + self.next_wait();
        loop {
            let transition_at = self.next_transition();
            let close_at = self
                .fail_closed_after
                .filter(|_| !self.keyring.is_closed())
                .map(|limit| self.confirmed_at + limit);
            let fetched = tokio::select! {
                // Stopping wins over every other ready branch (select! picks
                // at random otherwise, and a stopped refresher fetched again).
                biased;
                _ = stopped.changed() => break,
                () = tokio::time::sleep_until(poll_at) => self.refresh().await,
                () = sleep_until_maybe(transition_at) => {
                    if let Err(error) = self.reevaluate() {
                        tracing::warn!(source = %source, error = %error, "re-evaluation refused; keeping the key set");
                        self.record_failure(&error);
                    }
                    continue;
                }
                () = sleep_until_maybe(close_at) => {
                    self.fail_closed(&source);
                    continue;
                }
                () = wake.notified() => self.refresh().await,
                alive = changed(&mut changes) => {
                    if !alive {
                        tracing::warn!(source = %source, "change watch ended; polling only");
                        changes = None;
                        continue;
                    }
                    tokio::time::sleep(SETTLE).await;
                    if let Some(watch) = changes.as_mut() {
                        watch.drain();
                    }
                    self.refresh().await
                }
            };
            match fetched {
                Ok(()) => self.record_success(&source),
                Err(error) => {
                    self.failures = self.failures.saturating_add(1);
                    tracing::warn!(
                        source = %source,
                        error = %error,
                        consecutive_failures = self.failures,
                        generation = self.keyring.generation(),
                        "refresh failed; keeping the last good key set"
                    );
                    self.record_failure(&error);
                }
            }
            poll_at = Instant::now() + self.next_wait();
        }
        tracing::debug!(source = %source, "refresher stopped");
    }

    /// The interval ± jitter after a success, the capped exponential backoff
    /// after failures.
    fn next_wait(&self) -> Duration {
        match self.failures {
            0 => self.jittered_interval(),
            n => (self.backoff_initial * 2u32.saturating_pow(n - 1)).min(self.backoff_max),
        }
    }

    fn record_success(&mut self, source: &str) {
        #[cfg(feature = "metrics")]
        crate::metrics::record_refresh(true);
        self.failures = 0;
        self.confirmed_at = Instant::now();
        let was_closed = self.keyring.is_closed();
        self.keyring.confirmed(self.fail_closed_after);
        if was_closed && !self.keyring.is_closed() {
            tracing::warn!(source = %source, "the store confirmed the keys again; verifying again");
        }
        let now = SystemTime::now();
        let mut status = lock(&self.status);
        status.last_attempt = now;
        status.health = Health::Healthy;
        status.last_success = now;
        status.last_error = None;
        status.consecutive_failures = 0;
    }

    /// The store has not confirmed the keys within the limit: refuse every
    /// verification until it does.
    fn fail_closed(&mut self, source: &str) {
        tracing::error!(
            source = %source,
            unconfirmed_for = ?self.confirmed_at.elapsed(),
            "keys unconfirmed for longer than the limit; failing closed: no token verifies until the store answers"
        );
        lock(&self.status).health = Health::Stale;
    }

    /// Marks the status degraded with `error` (stale once failed closed);
    /// the last good key set stays.
    fn record_failure(&self, error: &RefreshError) {
        #[cfg(feature = "metrics")]
        crate::metrics::record_refresh(false);
        let mut status = lock(&self.status);
        status.last_attempt = SystemTime::now();
        status.health = if self.keyring.is_closed() {
            Health::Stale
        } else {
            Health::Degraded
        };
        status.last_error = Some(error.to_string());
        status.consecutive_failures = self.failures.max(1);
    }

    fn jittered_interval(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.interval;
        }
        let spread = self.jitter.as_secs_f64();
        let offset = rand::rng().random_range(-spread..=spread);
        Duration::from_secs_f64((self.interval.as_secs_f64() + offset).max(0.001))
    }

    fn next_transition(&self) -> Option<Instant> {
        let now = SystemTime::now();
        let at = self.keyring.load().next_transition_after(now)?;
        let until = at.duration_since(now).unwrap_or_default();
        // Wake a hair after the moment so the new role is in force; a moment
        // too far to count in `Instant`s (a store date of 1e300) never comes.
        Instant::now().checked_add(until.saturating_add(Duration::from_millis(1)))
    }

    async fn refresh(&mut self) -> Result<(), RefreshError> {
        let versions = fetch(&self.provider, self.policy.versions_used(), self.fetch_timeout).await?;
        self.first_seen.observe(&versions, SystemTime::now());
        self.versions = Some(versions);
        self.reevaluate()
    }

    fn reevaluate(&mut self) -> Result<(), RefreshError> {
        let Some(versions) = &self.versions else {
            // Serving a break-glass set: nothing fetched to re-evaluate yet.
            return Ok(());
        };
        let now = SystemTime::now();
        let set = match evaluate(&self.policy, versions, &self.first_seen, now) {
            Ok(set) => set,
            Err(error) => return Err(self.apply_revocations(now).unwrap_or(error)),
        };
        if self.revoked {
            self.revoked = false;
            self.keyring.set_closed(false);
            tracing::warn!(source = %self.provider.source(), "a usable key set again; verifying again");
        }
        self.install(set);
        Ok(())
    }

    /// The new key set was refused; revocations apply anyway: keys the store
    /// no longer holds as enabled and unexpired leave the set, and if the
    /// signing key is among them the keyring fails closed, and that is the
    /// error to report.
    fn apply_revocations(&mut self, now: SystemTime) -> Option<RefreshError> {
        let versions = self.versions.as_ref()?;
        let previous = self.keyring.key_set();
        match self.policy.revoke(&previous, versions, now)? {
            Ok(set) => {
                tracing::warn!(source = %self.provider.source(), "keys revoked in the store leave the key set");
                self.install(set);
                None
            }
            Err(error) => {
                if !self.revoked {
                    tracing::error!(source = %self.provider.source(), error = %error, "failing closed");
                }
                self.revoked = true;
                self.keyring.set_closed(true);
                Some(RefreshError::Policy(error))
            }
        }
    }

    fn install(&self, set: KeySet) {
        if !set.unchanged_from(&self.keyring.load()) {
            let generation = self.keyring.install(set);
            log_key_set(&self.provider.source(), &self.keyring.load(), generation);
        }
    }
}

/// Records, when the task ends for any reason (a panic unwinding through it,
/// its runtime shutting down), that no refresher keeps the keys current.
struct TaskEnd {
    keyring: Keyring,
    status: Arc<Mutex<Status>>,
    source: String,
}

impl Drop for TaskEnd {
    fn drop(&mut self) {
        if self.keyring.stopped().is_some() {
            return;
        }
        let reason = if std::thread::panicking() {
            "the refresher task panicked; the keys are no longer refreshed"
        } else {
            "the refresher task ended (its runtime shut down); the keys are no longer refreshed"
        };
        tracing::error!(source = %self.source, "{reason}");
        self.keyring.set_stopped(reason.to_owned());
        lock(&self.status).health = Health::Stopped;
    }
}

async fn sleep_until_maybe(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn changed(changes: &mut Option<crate::ChangeWatch>) -> bool {
    match changes {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}
