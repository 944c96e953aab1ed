//! Rotation on a period, exactly once per period across a fleet: the rule
//! every door runs ([`RefresherBuilder::rotate_every`](crate::RefresherBuilder::rotate_every)
//! in each replica, `keyroll agent --rotate-every` on each host, `keyroll
//! rotate --if-older-than` from cron).
//!
//! The newest version the store holds that can still verify, pending or
//! current, is aged by the store's own creation time: once it is `period`
//! old (or the store holds no key yet) a new key is due, and a writer
//! publishes one **only if** the store's newest version is still the one it
//! read ([`KeyProvider::publish_if`], the store's compare-and-set). Many
//! writers acting on the same reading make exactly one new version; the
//! others lose ([`Attempt::Lost`]), read the store again and serve the
//! winner's key. A key still waiting to sign counts as the newest, so a
//! rotation never stacks on another.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::keygen::{self, KeyForm, KeyGenError};
use crate::metrics_page::UsageSource;
use crate::policy::saturating_add;
use crate::{
    FirstSeen, KeyProvider, KeyStrength, KeyVersion, Policy, ProviderError, ProviderErrorKind, Published,
    RefreshError, UsageWindow,
};

/// Why a rotation period was refused, or a rotation could not be made.
/// Never names key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// A period of zero.
    #[error("rotate_every must be longer than zero: a new key would be due at every read of the store")]
    ZeroPeriod,
    /// A period no longer than the activation delay.
    #[error(
        "rotate_every ({period:?}) must be longer than the activation delay ({delay:?}): each key would be \
         replaced before it ever signs; lengthen the period or shorten activation_delay"
    )]
    ShorterThanActivation {
        /// The period asked for.
        period: Duration,
        /// The activation delay in force.
        delay: Duration,
    },
    /// The store has no compare-and-set.
    #[error(
        "{source_name} has no compare-and-set, so every replica rotating it could publish a key of its own; \
         rotate it from one place with `keyroll rotate` (its capabilities: README, \"Stores\")"
    )]
    NoCompareAndSet {
        /// The store.
        source_name: String,
    },
    /// The store keeps no creation time for its newest key.
    #[error("{source_name} keeps no creation time for version {id}, so its age is unknown")]
    NoCreationTime {
        /// The store.
        source_name: String,
        /// The version without a time.
        id: String,
    },
    /// The new key could not be generated.
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
    /// The store refused or failed the write (a read-only token, an outage).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Checks a rotation period against the activation delay in force and the
/// store's capabilities: what a refresher does before it starts.
///
/// # Errors
/// [`RotationError::ZeroPeriod`], [`RotationError::ShorterThanActivation`]
/// or [`RotationError::NoCompareAndSet`].
pub fn check_period(
    period: Duration,
    activation_delay: Duration,
    provider: &dyn KeyProvider,
) -> Result<(), RotationError> {
    if period.is_zero() {
        return Err(RotationError::ZeroPeriod);
    }
    if period <= activation_delay {
        return Err(RotationError::ShorterThanActivation {
            period,
            delay: activation_delay,
        });
    }
    can_compare_and_set(provider)
}

/// [`RotationError::NoCompareAndSet`] unless the store declares
/// [`Capabilities::compare_and_set`](crate::Capabilities::compare_and_set).
pub fn can_compare_and_set(provider: &dyn KeyProvider) -> Result<(), RotationError> {
    if provider.capabilities().compare_and_set {
        Ok(())
    } else {
        Err(RotationError::NoCompareAndSet {
            source_name: provider.source(),
        })
    }
}

/// When the next key is due, from what the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Now: the newest usable key is `period` old, or there is none.
    Now {
        /// The store's newest version, whatever its state (what the
        /// compare-and-set compares with); `None` for an empty store.
        superseded: Option<String>,
    },
    /// Not yet.
    Later {
        /// The newest usable version's id.
        newest: String,
        /// Its age, by the store's creation time.
        age: Duration,
        /// When it will be `period` old.
        at: SystemTime,
    },
}

/// Whether a key is due at `now` given the store's `versions` (newest
/// first) and the rotation `period`.
///
/// # Errors
/// [`RotationError::NoCreationTime`] when the newest usable version has no
/// creation time (`source_name` names the store).
pub fn due(
    versions: &[KeyVersion],
    period: Duration,
    now: SystemTime,
    source_name: &str,
) -> Result<Due, RotationError> {
    let Some(newest) = versions.iter().find(|version| version.usable_at(now)) else {
        return Ok(Due::Now {
            superseded: versions.first().map(|version| version.id.clone()),
        });
    };
    let created = newest.created.ok_or_else(|| RotationError::NoCreationTime {
        source_name: source_name.to_owned(),
        id: newest.id.clone(),
    })?;
    let age = now.duration_since(created).unwrap_or_default();
    if age >= period {
        return Ok(Due::Now {
            superseded: versions.first().map(|version| version.id.clone()),
        });
    }
    Ok(Due::Later {
        newest: newest.id.clone(),
        age,
        at: saturating_add(created, period),
    })
}

/// What [`publish_if_due`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// This writer published the new key.
    Published {
        /// What the store made of it.
        published: Published,
        /// Its fingerprint.
        fingerprint: String,
    },
    /// The newest key is younger than the period: nothing was written.
    NotDue {
        /// The newest usable version's id.
        newest: String,
        /// Its age, by the store's creation time.
        age: Duration,
        /// When the next key is due.
        at: SystemTime,
    },
    /// Another writer published first (the store's compare-and-set refused
    /// this one): nothing was written by this writer.
    Lost {
        /// The newest version this writer saw, now superseded.
        superseded: Option<String>,
    },
}

/// Publishes a new key of `form` (checked against `strength`) when
/// [`due`] says so, conditional on the store's newest version in
/// `versions` (just read) being still the newest. With `promote`, the
/// writer that won then makes it the store's current version (stores with
/// stages, where a pending version never signs; staged activation still
/// holds it verify-only for the activation delay).
///
/// # Errors
/// [`RotationError::NoCompareAndSet`] for a store without compare-and-set
/// (nothing is written), [`RotationError::NoCreationTime`], a generation
/// error, or the store's refusal of the write.
pub async fn publish_if_due(
    provider: &dyn KeyProvider,
    versions: &[KeyVersion],
    period: Duration,
    form: KeyForm,
    strength: &KeyStrength,
    promote: bool,
) -> Result<Attempt, RotationError> {
    can_compare_and_set(provider)?;
    let superseded = match due(versions, period, SystemTime::now(), &provider.source())? {
        Due::Now { superseded } => superseded,
        Due::Later { newest, age, at } => return Ok(Attempt::NotDue { newest, age, at }),
    };
    let material = keygen::generate(form, strength)?;
    match provider.publish_if(&material, superseded.as_deref()).await {
        Ok(published) => {
            if promote {
                provider.promote(&published.id).await?;
            }
            Ok(Attempt::Published {
                published,
                fingerprint: material.fingerprint(),
            })
        }
        Err(error) if error.kind() == ProviderErrorKind::Conflict => Ok(Attempt::Lost { superseded }),
        Err(error) => Err(error.into()),
    }
}

/// Keeps a version the policy retired enabled while a usage page shows it
/// still verifies tokens ([`UsageSource`], such as `keyroll::MetricsPage`
/// on a Prometheus `/federate` page of the fleet's
/// `keyroll_verifications_total`).
///
/// The page is read at every [`sample`](Self::sample); a version may be
/// retired once the readings span the whole `window` (less one sampling
/// step) and its count did not grow over them. Until then, and while the
/// page cannot be read, it stays enabled, and [`retire`] says why.
pub struct UsageGate {
    source: Arc<dyn UsageSource>,
    window: UsageWindow,
}

impl UsageGate {
    /// A gate reading `source`, retiring versions unused for `window`.
    pub fn new(source: impl UsageSource, window: Duration) -> Self {
        Self {
            source: Arc::new(source),
            window: UsageWindow::new(window),
        }
    }

    /// The window a version must go unused for.
    pub fn window(&self) -> Duration {
        self.window.window()
    }

    /// Reads the page and records the counts of the versions `ids`.
    ///
    /// # Errors
    /// Why the page could not be read.
    pub async fn sample(&mut self, ids: &[String]) -> Result<(), String> {
        let totals = self.source.verifications(ids).await?;
        self.window.sample(
            std::time::Instant::now(),
            totals.into_iter().map(|(id, n)| (Arc::from(id), n)),
        );
        Ok(())
    }

    /// Why version `id` must stay enabled, or `None` when it may go: the
    /// readings span the window less `step` (how often they are taken) and
    /// its count did not grow.
    pub fn still_used(&self, id: &str, step: Duration) -> Option<String> {
        let Some((verified, span)) = self.window.within(id) else {
            return Some("the usage page has not been read yet".to_owned());
        };
        if verified > 0 {
            return Some(format!(
                "the usage page shows {verified} verification(s) with it in the last {}s",
                span.as_secs()
            ));
        }
        let needed = self.window().saturating_sub(step);
        if span < needed {
            return Some(format!(
                "the usage page has been read over {}s of the {}s window, too short to tell",
                span.as_secs(),
                self.window().as_secs()
            ));
        }
        None
    }
}

impl fmt::Debug for UsageGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageGate")
            .field("source", &self.source)
            .field("window", &self.window())
            .finish()
    }
}

/// What [`retire`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retired {
    /// The versions disabled, in order.
    pub disabled: Vec<String>,
    /// The versions the policy retired that the usage gate kept enabled,
    /// each with why.
    pub kept: Vec<(String, String)>,
}

/// How many versions beyond those the policy uses [`retire`] reads, so
/// that versions left enabled by an earlier policy or by hand are retired
/// too, a batch at a time.
pub const RETIRE_SCAN: usize = 16;

/// Disables in the store the enabled versions `policy` no longer uses at
/// `now` (past the fallback window, beyond `max_fallbacks`), reporting each
/// as soon as it is disabled; with a `gate` (and how often it is sampled),
/// only those the usage page shows unused for its window. Reads the store
/// afresh, [`RETIRE_SCAN`] versions beyond those the policy uses. Disabling
/// is idempotent, so writers that race do no harm; a refresher only retires
/// after a rotation it won. Destroys nothing.
///
/// # Errors
/// The store's failure to answer, the policy's refusal of its versions
/// (nothing is retired from a refused set) or the store's refusal of a
/// write.
pub async fn retire(
    provider: &dyn KeyProvider,
    policy: &Policy,
    now: SystemTime,
    gate: Option<(&mut UsageGate, Duration)>,
    mut on_disabled: impl FnMut(&str),
) -> Result<Retired, RefreshError> {
    let versions = provider
        .fetch_newest(policy.versions_used().saturating_add(RETIRE_SCAN))
        .await?;
    let mut first_seen = FirstSeen::new();
    first_seen.observe(&versions, now);
    let candidates = policy.retired(&versions, &first_seen, now)?;
    let mut retired = Retired::default();
    let gate = match gate {
        Some((gate, step)) if !candidates.is_empty() => match gate.sample(&candidates).await {
            Ok(()) => Some((&*gate, step)),
            Err(error) => {
                retired.kept = candidates
                    .into_iter()
                    .map(|id| (id, format!("the usage page could not be read: {error}")))
                    .collect();
                return Ok(retired);
            }
        },
        _ => None,
    };
    for id in candidates {
        if let Some(why) = gate.and_then(|(gate, step)| gate.still_used(&id, step)) {
            retired.kept.push((id, why));
            continue;
        }
        provider.disable(&id).await?;
        on_disabled(&id);
        retired.disabled.push(id);
    }
    Ok(retired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyMaterial;

    fn version(id: &str, created: Option<SystemTime>) -> KeyVersion {
        let mut version = KeyVersion::new(id, KeyMaterial::from("0123456789abcdefghijklmnopqrstuvwxyz"));
        if let Some(created) = created {
            version = version.with_created(created);
        }
        version
    }

    #[test]
    fn a_key_is_due_once_the_newest_usable_one_is_a_period_old() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let period = Duration::from_secs(60);
        assert_eq!(due(&[], period, now, "s").unwrap(), Due::Now { superseded: None });
        let young = [version("2", Some(now - Duration::from_secs(10)))];
        assert_eq!(
            due(&young, period, now, "s").unwrap(),
            Due::Later {
                newest: "2".into(),
                age: Duration::from_secs(10),
                at: now + Duration::from_secs(50)
            }
        );
        let old = [
            version("2", Some(now - Duration::from_secs(60))),
            version("1", Some(now - Duration::from_secs(600))),
        ];
        assert_eq!(
            due(&old, period, now, "s").unwrap(),
            Due::Now {
                superseded: Some("2".into())
            }
        );
        // A disabled newest version does not count as the newest key, but
        // the compare-and-set compares with it.
        let disabled = [
            version("3", Some(now)).with_state(crate::KeyState::Disabled),
            version("2", Some(now - Duration::from_secs(90))),
        ];
        assert_eq!(
            due(&disabled, period, now, "s").unwrap(),
            Due::Now {
                superseded: Some("3".into())
            }
        );
        let timeless = [version("k-1", None)];
        let error = due(&timeless, period, now, "file:///k").unwrap_err();
        assert!(
            error.to_string().contains("no creation time for version k-1"),
            "{error}"
        );
    }

    #[test]
    fn periods_of_zero_or_within_the_activation_delay_are_refused() {
        #[derive(Debug)]
        struct ReadOnly;
        #[async_trait::async_trait]
        impl KeyProvider for ReadOnly {
            async fn fetch_newest(&self, _: usize) -> Result<Vec<KeyVersion>, ProviderError> {
                Ok(Vec::new())
            }
            fn reach(&self) -> crate::Reach {
                crate::Reach::Shared
            }
        }
        let provider = ReadOnly;
        let error = check_period(Duration::ZERO, Duration::ZERO, &provider).unwrap_err();
        assert!(matches!(error, RotationError::ZeroPeriod), "{error}");
        let error = check_period(Duration::from_secs(3), Duration::from_secs(35), &provider).unwrap_err();
        assert!(
            error.to_string().contains("replaced before it ever signs"),
            "{error}"
        );
        let error = check_period(Duration::from_secs(60), Duration::from_secs(35), &provider).unwrap_err();
        assert!(error.to_string().contains("no compare-and-set"), "{error}");
    }
}
