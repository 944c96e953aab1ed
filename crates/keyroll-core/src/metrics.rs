//! Key usage and refresh state through the [`metrics`] facade (cargo feature
//! `metrics`), for Prometheus, OpenTelemetry or StatsD exporters.
//!
//! Nothing is recorded per verification: each key counts in per-thread slots
//! (see [`KeyEntry::verifications`](crate::KeyEntry::verifications)), and
//! [`KeyringMetrics::update`] reads the sums and publishes them as absolute
//! counter values. Call it when the exporter is scraped, or from a periodic
//! task; the hot path pays nothing for metrics.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `keyroll_verifications_total` | counter | `key_id`, `role`, `format` |
//! | `keyroll_key_role` | gauge (1 for the key's role now, 0 for the others) | `key_id`, `role` |
//! | `keyroll_key_set_generation` | gauge | |
//! | `keyroll_activation_seconds_ahead` | gauge, per key not yet signing | `key_id` |
//! | `keyroll_refresh_consecutive_failures` | gauge | |
//! | `keyroll_refresh_staleness_seconds` | gauge | |
//! | `keyroll_refresh_health` | gauge (1 for the health now, 0 for the others) | `health` |
//! | `keyroll_refreshes_total` | counter, recorded by the refresher | `outcome` (`success`, `failure`) |
//! | `keyroll_rejections_total` | counter, recorded per refused token by every format ([`record_rejection`](crate::record_rejection)) | `format`, `reason` |
//! | `keyroll_rotations_total` | counter, recorded by a refresher with [`rotate_every`](crate::RefresherBuilder::rotate_every) | `outcome` (`published`, `lost`, `failed`) |
//! | `keyroll_retirements_total` | counter, versions a refresher disabled as retired | |
//! | `keyroll_rotation_due_seconds` | gauge, seconds until the next key is due (negative: overdue) | |
//! | `keyroll_cookies_reissued_total` | counter, recorded per cookie re-issued with the current key (`keyroll-axum`, [`record_reissue`](crate::record_reissue)) | `kind` (`signed`, `private`, `django-session`) |

use std::fmt;
use std::time::SystemTime;

use crate::usage::VERIFYING_ROLES;
use crate::{Format, Health, Keyring, Role, Status};

/// Publishes a keyring's key usage (and, given a refresher's status, its
/// refresh state) to the installed `metrics` recorder.
#[derive(Clone)]
pub struct KeyringMetrics {
    keyring: Keyring,
}

impl KeyringMetrics {
    /// Metrics of `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self { keyring }
    }

    /// Publishes the current key set: verifications per key, role and format,
    /// each key's role, the generation, and how far ahead pending keys start
    /// signing.
    pub fn update(&self) {
        let set = self.keyring.key_set();
        let now = SystemTime::now();
        metrics::gauge!("keyroll_key_set_generation").set(set.generation() as f64);
        for key in set.keys() {
            let id = key.id().to_owned();
            let role_now = key.role_at(now);
            for role in [Role::Current, Role::Pending, Role::Fallback, Role::Retired] {
                metrics::gauge!("keyroll_key_role", "key_id" => id.clone(), "role" => role.to_string())
                    .set(if role == role_now { 1.0 } else { 0.0 });
            }
            for format in Format::ALL {
                for role in VERIFYING_ROLES {
                    let count = key.verifications_of(format, role);
                    if count > 0 {
                        metrics::counter!(
                            "keyroll_verifications_total",
                            "key_id" => id.clone(),
                            "role" => role.to_string(),
                            "format" => format.name()
                        )
                        .absolute(count);
                    }
                }
            }
            if let Some(ahead) = key.signs_from().and_then(|from| from.duration_since(now).ok()) {
                metrics::gauge!("keyroll_activation_seconds_ahead", "key_id" => id).set(ahead.as_secs_f64());
            }
        }
    }

    /// Publishes a refresher's state: consecutive failures, staleness, health
    /// and, with automatic rotation, when the next key is due.
    pub fn update_status(&self, status: &Status) {
        metrics::gauge!("keyroll_refresh_consecutive_failures").set(f64::from(status.consecutive_failures));
        metrics::gauge!("keyroll_refresh_staleness_seconds").set(status.staleness().as_secs_f64());
        if let Some(due) = status.rotation.as_ref().and_then(|rotation| rotation.next_due) {
            let now = SystemTime::now();
            let seconds = match due.duration_since(now) {
                Ok(ahead) => ahead.as_secs_f64(),
                Err(past) => -past.duration().as_secs_f64(),
            };
            metrics::gauge!("keyroll_rotation_due_seconds").set(seconds);
        }
        for health in [Health::Healthy, Health::Degraded, Health::Stale, Health::Stopped] {
            metrics::gauge!("keyroll_refresh_health", "health" => Health::as_str(health))
                .set(if health == status.health { 1.0 } else { 0.0 });
        }
    }
}

/// Counts one refresh by its outcome (called by the refresher).
pub(crate) fn record_refresh(success: bool) {
    metrics::counter!("keyroll_refreshes_total", "outcome" => if success { "success" } else { "failure" })
        .increment(1);
}

/// Counts one automatic rotation attempt by its outcome (called by the
/// refresher).
pub(crate) fn record_rotation(outcome: &'static str) {
    metrics::counter!("keyroll_rotations_total", "outcome" => outcome).increment(1);
}

/// Counts versions disabled as retired (called by the refresher).
pub(crate) fn record_retirements(count: u64) {
    metrics::counter!("keyroll_retirements_total").increment(count);
}

impl fmt::Debug for KeyringMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringMetrics")
            .field("generation", &self.keyring.generation())
            .finish()
    }
}
