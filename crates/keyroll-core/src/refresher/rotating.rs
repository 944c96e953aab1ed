//! Automatic rotation in the refresher ([`RefresherBuilder::rotate_every`]):
//! when the store's newest key is a period old, every replica may publish
//! the next one, after a random delay within the jitter, conditionally on
//! the version it read ([`rotation::publish_if_due`]); exactly one wins, the
//! others read the store again and serve the winner's key. The winner then
//! disables what the policy retired, where the store can disable.
//!
//! [`RefresherBuilder::rotate_every`]: super::RefresherBuilder::rotate_every

use std::time::{Duration, SystemTime};

use rand::Rng as _;
use tokio::time::Instant;

use super::lock;
use super::task::Task;
use crate::keygen::KeyForm;
use crate::rotation::{self, Attempt, Due, UsageGate};

/// The state of automatic rotation, in [`Status::rotation`](super::Status::rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationStatus {
    /// The rotation period.
    pub period: Duration,
    /// When the next key is due (the newest key's creation time plus the
    /// period), once the store has been read; a replica attempts within
    /// the jitter after it.
    pub next_due: Option<SystemTime>,
    /// New keys this replica published.
    pub published: u64,
    /// Rotations another writer published first (this replica's write was
    /// refused by the store's compare-and-set; it serves the winner's key).
    pub lost: u64,
    /// Versions this replica disabled in the store as retired.
    pub retired: u64,
    /// Versions the policy retired that stay enabled because the usage
    /// page ([`RefresherBuilder::retire_unless_used`](super::RefresherBuilder::retire_unless_used))
    /// shows them in use or cannot tell yet, each with why; as of this
    /// replica's last retirement.
    pub kept: Vec<(String, String)>,
    /// Why the last rotation failed (a store refusing the write, a key
    /// without a creation time); `None` once one succeeds or is not due.
    /// The key set keeps serving meanwhile.
    pub last_error: Option<String>,
}

impl RotationStatus {
    pub(super) fn new(period: Duration) -> Self {
        Self {
            period,
            next_due: None,
            published: 0,
            lost: 0,
            retired: 0,
            kept: Vec::new(),
            last_error: None,
        }
    }
}

/// The rotation part of the task: the period and when to attempt next.
#[derive(Debug)]
pub(super) struct Rotating {
    pub(super) period: Duration,
    pub(super) attempt_at: Option<Instant>,
    /// Keeps retired versions still in use enabled.
    pub(super) gate: Option<UsageGate>,
}

impl Task {
    /// When to attempt a rotation next, if rotating.
    pub(super) fn rotation_at(&self) -> Option<Instant> {
        self.rotating.as_ref().and_then(|rotating| rotating.attempt_at)
    }

    /// Schedules the next attempt from what the store last reported: when
    /// the newest key turns a period old, plus a random part of the jitter
    /// so that replicas do not all write at once.
    pub(super) fn schedule_rotation(&mut self) {
        let Some(period) = self.rotating.as_ref().map(|rotating| rotating.period) else {
            return;
        };
        let Some(versions) = &self.versions else {
            return;
        };
        let now = SystemTime::now();
        let (attempt_at, next_due, error) =
            match rotation::due(versions, period, now, &self.provider.source()) {
                Ok(Due::Now { .. }) => (Some(self.within_jitter(Duration::ZERO)), Some(now), None),
                Ok(Due::Later { at, .. }) => (
                    Some(self.within_jitter(at.duration_since(now).unwrap_or_default())),
                    Some(at),
                    None,
                ),
                Err(error) => (None, None, Some(error.to_string())),
            };
        if let Some(rotating) = self.rotating.as_mut() {
            rotating.attempt_at = attempt_at;
        }
        let mut status = lock(&self.status);
        if let Some(rotation) = status.rotation.as_mut() {
            rotation.next_due = next_due;
            if error.is_some() {
                rotation.last_error = error;
            }
        }
    }

    fn within_jitter(&self, after: Duration) -> Instant {
        let spread = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=self.jitter)
        };
        let now = Instant::now();
        now.checked_add(after.saturating_add(spread))
            // A moment too far to count in `Instant`s: a day, then look again.
            .unwrap_or_else(|| now + Duration::from_secs(86_400))
    }

    /// Reads the store, publishes the next key when it is due (the store's
    /// compare-and-set on the version just read), reads the store again to
    /// serve it (or the winner's), and retires what the policy no longer
    /// uses. A failure keeps the key set serving and says why in the status.
    pub(super) async fn rotate(&mut self, source: &str) {
        let Some(period) = self.rotating.as_ref().map(|rotating| rotating.period) else {
            return;
        };
        if !self.refreshed(source).await {
            return;
        }
        let versions = self.versions.clone().unwrap_or_default();
        self.sample_usage(source, &versions).await;
        let form = KeyForm::of(&self.keyring.load());
        let attempt = {
            let promote = self.provider.capabilities().promote;
            rotation::publish_if_due(
                &*self.provider,
                &versions,
                period,
                form,
                &self.policy.strength,
                promote,
            )
            .await
        };
        match attempt {
            Ok(Attempt::Published {
                published,
                fingerprint,
            }) => {
                tracing::info!(source = %source, id = %published.id, key = %fingerprint, "published the next key (automatic rotation)");
                self.record_rotation("published", None, |status| status.published += 1);
                if self.refreshed(source).await {
                    self.retire(source).await;
                }
            }
            Ok(Attempt::Lost { superseded }) => {
                tracing::info!(
                    source = %source,
                    superseded = superseded.as_deref().unwrap_or("none"),
                    "another replica published the next key first; serving it"
                );
                self.record_rotation("lost", None, |status| status.lost += 1);
                self.refreshed(source).await;
            }
            Ok(Attempt::NotDue { .. }) => {}
            Err(error) => {
                tracing::warn!(source = %source, error = %error, "automatic rotation failed; the key set keeps serving");
                self.record_rotation("failed", Some(error.to_string()), |_| {});
                // Try again after a poll interval, not at once.
                let retry = self.within_jitter(self.interval);
                self.schedule_rotation();
                if let Some(rotating) = self.rotating.as_mut() {
                    rotating.attempt_at = Some(retry);
                }
                return;
            }
        }
        self.schedule_rotation();
    }

    /// A refresh, recorded as any other; whether it succeeded.
    async fn refreshed(&mut self, source: &str) -> bool {
        let result = self.refresh().await;
        self.record(source, result)
    }

    /// Reads the usage page, if any, once per attempt: its readings span
    /// the gate's window by the time a version is retired.
    async fn sample_usage(&mut self, source: &str, versions: &[crate::KeyVersion]) {
        let Some(gate) = self.rotating.as_mut().and_then(|rotating| rotating.gate.as_mut()) else {
            return;
        };
        let ids: Vec<String> = versions.iter().map(|version| version.id.clone()).collect();
        if let Err(error) = gate.sample(&ids).await {
            tracing::warn!(source = %source, error = %error, "cannot read the usage page; retired keys stay enabled");
        }
    }

    /// Disables what the policy retired, where the store can disable (with
    /// a usage page: only what it shows unused for its window).
    async fn retire(&mut self, source: &str) {
        if !self.provider.capabilities().disable {
            return;
        }
        let Some(rotating) = self.rotating.as_mut() else {
            return;
        };
        let step = rotating.period;
        let gate = rotating.gate.as_mut().map(|gate| (gate, step));
        let retired = rotation::retire(&*self.provider, &self.policy, SystemTime::now(), gate, |id| {
            tracing::info!(source = %source, id = %id, "disabled a retired key version");
        })
        .await;
        match retired {
            Ok(retired) => {
                for (id, why) in &retired.kept {
                    tracing::warn!(source = %source, id = %id, why = %why, "a retired key version stays enabled: it may still be in use");
                }
                let count = retired.disabled.len() as u64;
                if let Some(rotation) = lock(&self.status).rotation.as_mut() {
                    rotation.retired = rotation.retired.saturating_add(count);
                    rotation.kept = retired.kept;
                }
                if count > 0 {
                    #[cfg(feature = "metrics")]
                    crate::metrics::record_retirements(count);
                    // The next read shows them disabled.
                    self.refreshed(source).await;
                }
            }
            Err(error) => {
                tracing::warn!(source = %source, error = %error, "retiring old key versions failed; they stay enabled");
                self.record_rotation("failed", Some(error.to_string()), |_| {});
            }
        }
    }

    fn record_rotation(
        &self,
        outcome: &'static str,
        error: Option<String>,
        count: impl FnOnce(&mut RotationStatus),
    ) {
        #[cfg(feature = "metrics")]
        crate::metrics::record_rotation(outcome);
        #[cfg(not(feature = "metrics"))]
        let _ = outcome;
        if let Some(rotation) = lock(&self.status).rotation.as_mut() {
            count(rotation);
            rotation.last_error = error;
        }
    }
}
