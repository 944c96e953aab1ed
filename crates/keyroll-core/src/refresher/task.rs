//! The background task: polls, push notifications, policy re-evaluation at
//! every activation or expiry moment, backoff and the stale limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::rotating::Rotating;
use super::{Health, RefreshError, Status, evaluate, fetch, lock, log_key_set};
use crate::{FirstSeen, KeyProvider, KeySet, KeyVersion, Keyring, Policy};

/// Quiet period after a push notification before the source is read, so a
/// burst of file events (an editor's save, a symlink swap) causes one read of
/// the finished file.
const SETTLE: Duration = Duration::from_millis(20);

pub(super) struct Task {
    pub(super) failures: u32,
    pub(super) fail_closed_after: Option<Duration>,
    /// When the store last confirmed the key set.
    pub(super) confirmed_at: Instant,
    /// The store revoked the signing key with no usable replacement: the
    /// keyring is forced closed until a key set is accepted.
    pub(super) revoked: bool,
    pub(super) provider: Arc<dyn KeyProvider>,
    pub(super) policy: Policy,
    pub(super) interval: Duration,
    pub(super) jitter: Duration,
    pub(super) fetch_timeout: Duration,
    pub(super) backoff_initial: Duration,
    pub(super) backoff_max: Duration,
    pub(super) keyring: Keyring,
    pub(super) status: Arc<Mutex<Status>>,
    pub(super) first_seen: FirstSeen,
    /// What the store last reported; `None` while serving a break-glass set
    /// that nothing has been fetched for yet.
    pub(super) versions: Option<Vec<KeyVersion>>,
    /// Automatic rotation, when on.
    pub(super) rotating: Option<Rotating>,
}

impl Task {
    pub(super) async fn run(
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
        self.schedule_rotation();
        loop {
            let transition_at = self.next_transition();
            let close_at = self
                .fail_closed_after
                .filter(|_| !self.keyring.is_closed())
                .map(|limit| self.confirmed_at + limit);
            let rotation_at = self.rotation_at();
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
                () = sleep_until_maybe(rotation_at) => {
                    self.rotate(&source).await;
                    poll_at = Instant::now() + self.next_wait();
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
            if self.record(&source, fetched) {
                self.schedule_rotation();
            }
            poll_at = Instant::now() + self.next_wait();
        }
        tracing::debug!(source = %source, "refresher stopped");
    }

    /// Records a refresh's outcome in the status, logs and metrics; whether
    /// it succeeded.
    pub(super) fn record(&mut self, source: &str, fetched: Result<(), RefreshError>) -> bool {
        match fetched {
            Ok(()) => {
                self.record_success(source);
                true
            }
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
                false
            }
        }
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

    pub(super) async fn refresh(&mut self) -> Result<(), RefreshError> {
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
pub(super) struct TaskEnd {
    pub(super) keyring: Keyring,
    pub(super) status: Arc<Mutex<Status>>,
    pub(super) source: String,
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
