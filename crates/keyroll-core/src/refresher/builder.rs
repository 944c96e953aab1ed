//! The settings of a refresher and its start: the first fetch, retried
//! until the startup timeout, then the background task spawned.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::rotating::{Rotating, RotationStatus};
use super::{
    CLOCK_SKEW_MARGIN, DEFAULT_INTERVAL, Health, Inner, RefreshError, Refresher, StartError, Status, Task,
    TaskEnd, evaluate, fetch, log_key_set, weak_key,
};
use crate::keygen::KeyForm;
use crate::metrics_page::UsageSource;
use crate::rotation::{self, Attempt, UsageGate};
use crate::{
    FirstSeen, KeyProvider, KeySet, KeyVersion, Keyring, Policy, PolicyError, ProviderErrorKind, Reach,
};

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
    rotate_every: Option<Duration>,
    usage_gate: Option<UsageGate>,
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
            rotate_every: None,
            usage_gate: None,
        }
    }
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

    /// Rotates the keys every `period` (off by default: rotating needs
    /// write access to the store). Once the store's newest key — pending or
    /// current, aged by the store's own creation time — is `period` old,
    /// this refresher publishes the next one after a random delay within
    /// the jitter, **only if** the store's newest version is still the one
    /// it read (the store's compare-and-set): of all the replicas that try,
    /// exactly one publishes; the others read the store again and serve its
    /// key. An empty store gets its first key the same way, at start. The
    /// replica that published disables what the policy retired, where the
    /// store can disable. A failed write keeps the key set serving and says
    /// why in [`Status::rotation`]. See [`crate::rotation`] and
    /// `docs/ROTATION.md`.
    ///
    /// [`start`](Self::start) refuses a period of zero, one no longer than
    /// the activation delay in force (each key would be replaced before it
    /// ever signs) and a store without compare-and-set
    /// ([`Capabilities::compare_and_set`](crate::Capabilities::compare_and_set)).
    pub fn rotate_every(mut self, period: Duration) -> Self {
        self.rotate_every = Some(period);
        self
    }

    /// With [`rotate_every`](Self::rotate_every): keeps a version the policy
    /// retired enabled in the store while `page` (the fleet's
    /// `keyroll_verifications_total`, such as `keyroll::MetricsPage` on a
    /// Prometheus `/federate` URL) shows it verified tokens within the last
    /// `window`, or cannot tell yet; a warning and
    /// [`RotationStatus::kept`] say so. The page is read once a period.
    pub fn retire_unless_used(mut self, page: impl UsageSource, window: Duration) -> Self {
        self.usage_gate = Some(UsageGate::new(page, window));
        self
    }

    /// The rotation period set by [`rotate_every`](Self::rotate_every).
    pub fn rotation_period(&self) -> Option<Duration> {
        self.rotate_every
    }

    /// The time between polls set by [`interval`](Self::interval), which the
    /// activation delay of a shared store counts with.
    pub fn poll_interval(&self) -> Duration {
        self.interval
    }

    /// Refuses a rotation period that cannot work
    /// ([`rotation::check_period`]: zero, no longer than the activation delay
    /// in force, a store without compare-and-set); `Ok` without one. What
    /// [`start`](Self::start) and `keyroll::ops::Agent` check first.
    ///
    /// # Errors
    /// The [`RotationError`](rotation::RotationError) saying why.
    pub fn check_rotation(&self) -> Result<(), rotation::RotationError> {
        let Some(period) = self.rotate_every else {
            return Ok(());
        };
        let delay = self.effective_policy().activation_delay.unwrap_or_default();
        rotation::check_period(period, delay, &*self.provider)
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

    /// [`fetch_once`](Self::fetch_once), reading a store that holds no key
    /// yet (absent: [`NotFound`](crate::ProviderErrorKind::NotFound); empty:
    /// [`Invalid`](crate::ProviderErrorKind::Invalid)) as no versions: what
    /// rotation reads, since an empty store's first key is due at once.
    pub async fn fetch_for_rotation(&self) -> Result<Vec<KeyVersion>, RefreshError> {
        match self.fetch_once().await {
            Err(error) if holds_no_key(&error) => Ok(Vec::new()),
            fetched => fetched,
        }
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
        if let Err(error) = self.check_rotation() {
            return Err(StartError {
                source_name: source,
                attempts: 0,
                last: error.into(),
            });
        }
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
                    if self.bootstrap(&policy, &error).await {
                        continue;
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
            rotation: self.rotate_every.map(RotationStatus::new),
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
            rotating: self.rotate_every.map(|period| Rotating {
                period,
                attempt_at: None,
                gate: self.usage_gate.take(),
            }),
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

impl RefresherBuilder {
    /// With [`rotate_every`](Self::rotate_every) set and a store that holds
    /// no usable key (`error` says so), publishes the first key, only if
    /// the store still holds no newer version than the one read (on an
    /// absent secret: only if it is still absent): of the replicas starting
    /// together, one creates it and all sign with it. Whether to read the
    /// store again at once.
    async fn bootstrap(&self, policy: &Policy, error: &RefreshError) -> bool {
        let Some(period) = self.rotate_every else {
            return false;
        };
        let no_usable_key = matches!(error, RefreshError::Policy(PolicyError::NoUsableKey));
        if !(holds_no_key(error) || no_usable_key) {
            return false;
        }
        let Ok(versions) = self.fetch_for_rotation().await else {
            return false;
        };
        let source = self.provider.source();
        let promote = self.provider.capabilities().promote;
        match rotation::publish_if_due(
            &*self.provider,
            &versions,
            period,
            KeyForm::SIGNING,
            &policy.strength,
            promote,
        )
        .await
        {
            Ok(Attempt::Published { published, .. }) => {
                tracing::info!(source = %source, id = %published.id, "the store held no usable key: published the first one");
                #[cfg(feature = "metrics")]
                crate::metrics::record_rotation("published");
                true
            }
            Ok(Attempt::Lost { .. }) => {
                tracing::info!(source = %source, "another replica published the first key; reading it");
                #[cfg(feature = "metrics")]
                crate::metrics::record_rotation("lost");
                false
            }
            Ok(Attempt::NotDue { .. }) => false,
            Err(error) => {
                tracing::warn!(source = %source, error = %error, "cannot publish the first key");
                false
            }
        }
    }
}

/// Whether `error` says the store holds no key yet: absent
/// ([`NotFound`](ProviderErrorKind::NotFound)) or empty
/// ([`Invalid`](ProviderErrorKind::Invalid)).
fn holds_no_key(error: &RefreshError) -> bool {
    matches!(error, RefreshError::Provider(error)
        if matches!(error.kind(), ProviderErrorKind::NotFound | ProviderErrorKind::Invalid))
}
