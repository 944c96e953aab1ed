//! The agent's work (`keyroll agent`): one poller per host or pod writes what
//! the store holds to a JSON key file that every process on the host reads
//! with `file://PATH`.
//!
//! The file holds the store's versions as reported (ids, material, creation
//! times, states, stages), not the policy's output, and declares the store's
//! reach: readers of a shared store's copy stage activation from the store's
//! own times, so every process on every host switches at the same instant.
//!
//! The rule: a reader of the file behaves as a reader of the store. So the
//! agent writes every answer of the store, including one its policy refuses
//! (a revoked signing key with no replacement, a weak key): the readers
//! evaluate it as the store's readers do, and fail closed where they do.
//! Withdrawn versions are written with their state and no material. While
//! the store cannot be read, the file is marked unavailable, so its readers
//! fail their reads as the store's readers do (and their `fail_closed_after`
//! applies); the next answer clears the mark.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use keyroll_core::keygen::KeyForm;
use keyroll_core::metrics_page::UsageSource;
use keyroll_core::rotation::{self, Attempt, Retired, RotationError, UsageGate};
use keyroll_core::{KeyVersion, Reach, RefreshError, RefresherBuilder};

use crate::file::{KeyFileError, key_file_json, mark_unavailable, write_if_changed};

/// What [`Agent::read_and_rotate`] found and did.
type Read = (
    Vec<KeyVersion>,
    Option<Result<Attempt, RotationError>>,
    Option<Result<Retired, RefreshError>>,
);

/// Writes what the store of a [`RefresherBuilder`] holds to a key file.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use keyroll::ops::Agent;
///
/// let builder = keyroll::Refresher::builder(keyroll::open("vault://vault:8200/secret/myapp")?)
///     .interval(Duration::from_secs(30))
///     .rotate_every(Duration::from_secs(30 * 86_400)); // optional: rotate monthly
/// let agent = Agent::new(builder, "/run/myapp/keys.json")?;
/// agent.poll().await?;
/// agent
///     .run(tokio::signal::ctrl_c(), |poll| match poll {
///         Ok(polled) => polled.line(agent.out()).into_iter().for_each(|line| println!("{line}")),
///         Err(error) => eprintln!("{error}"),
///     })
///     .await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Agent {
    builder: RefresherBuilder,
    out: PathBuf,
    reach: Reach,
    /// Keeps retired versions still in use enabled (a poll at a time).
    gate: tokio::sync::Mutex<Option<UsageGate>>,
}

/// What one [`Agent::poll`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Polled {
    /// Whether the file changed (it is rewritten only when the store's
    /// answer did).
    pub written: bool,
    /// How many versions the store reported.
    pub versions: usize,
    /// The newest version's id.
    pub newest: Option<String>,
    /// Why the policy refuses what was written, if it does: the verdict
    /// every reader of the file reaches (they fail closed where the store's
    /// readers do).
    pub refused: Option<RefreshError>,
    /// With a rotation period ([`RefresherBuilder::rotate_every`]): what the
    /// rotation attempt of this poll did, or why it failed (the file is
    /// written all the same).
    pub rotation: Option<Result<Attempt, RotationError>>,
    /// After a key this agent published, where the store can disable:
    /// what it retired (and kept, with a usage page), or why it could not.
    pub retired: Option<Result<Retired, RefreshError>>,
}

impl Polled {
    /// The line `keyroll agent` prints after a write, or `None` when the
    /// file was left as it was.
    pub fn line(&self, out: &Path) -> Option<String> {
        self.written.then(|| {
            format!(
                "{} wrote {} version(s) to {} (newest {})",
                super::rfc3339(SystemTime::now()),
                self.versions,
                out.display(),
                self.newest.as_deref().unwrap_or("-"),
            )
        })
    }

    /// The lines `keyroll agent` prints about its rotation attempt and
    /// what it retired; none when no key was due.
    pub fn rotation_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.rotation {
            Some(Ok(Attempt::Published { published, .. })) => {
                lines.push(format!("rotated: {}", published.id))
            }
            Some(Ok(Attempt::Lost { .. })) => {
                lines.push("another writer published the next key first".to_owned())
            }
            Some(Ok(Attempt::NotDue { .. })) | None => {}
            Some(Err(error)) => lines.push(format!(
                "rotation failed: {error}; the store's keys are written as they are"
            )),
        }
        match &self.retired {
            Some(Ok(retired)) => {
                lines.extend(
                    retired
                        .disabled
                        .iter()
                        .map(|id| format!("disabled version {id} (retired by the policy)")),
                );
                lines.extend(
                    (retired.kept.iter())
                        .map(|(id, why)| format!("kept version {id} enabled though retired: {why}")),
                );
            }
            Some(Err(error)) => lines.push(format!("retiring old versions failed: {error}")),
            None => {}
        }
        let now = super::rfc3339(SystemTime::now());
        lines.into_iter().map(|line| format!("{now} {line}")).collect()
    }
}

/// Whether the file was marked unavailable after the store failed to answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Marked {
    /// Marked: its readers fail their reads until the store answers.
    Yes(PathBuf),
    /// There was no file to mark yet.
    NoFile,
    /// Marking failed.
    Failed(PathBuf, io::Error),
}

impl fmt::Display for Marked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marked::Yes(out) => write!(f, "; marked {} unavailable until it answers", out.display()),
            Marked::NoFile => Ok(()),
            Marked::Failed(out, error) => write!(f, "; cannot mark {} unavailable: {error}", out.display()),
        }
    }
}

/// Why an [`Agent::poll`] wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The store did not answer, or answered what is not a key set.
    #[error("cannot read the store: {error}{marked}")]
    Unreadable {
        /// Why.
        #[source]
        error: RefreshError,
        /// What became of the file.
        marked: Marked,
    },
    /// The store's answer cannot be written as a key file.
    #[error("{error}; {} is kept as it is", out.display())]
    Encode {
        /// Why.
        #[source]
        error: KeyFileError,
        /// The file.
        out: PathBuf,
    },
    /// The file could not be written.
    #[error("cannot write {}: {error}", out.display())]
    Write {
        /// Why.
        #[source]
        error: io::Error,
        /// The file.
        out: PathBuf,
    },
}

impl Agent {
    /// An agent copying the store of `builder` (its policy decides how many
    /// versions are read, and judges what is written) to `out`. With a
    /// rotation period ([`RefresherBuilder::rotate_every`], `keyroll agent
    /// --rotate-every`) each poll also publishes the next key once the
    /// newest is a period old, by the store's compare-and-set, so agents on
    /// every host make one new key between them
    /// ([`keyroll_core::rotation`]).
    ///
    /// # Errors
    /// The period refused as a refresher refuses it
    /// ([`RefresherBuilder::check_rotation`]: zero, no longer than the
    /// activation delay, which for a shared store counts with the builder's
    /// interval, the agent's polls; a store without compare-and-set).
    pub fn new(builder: RefresherBuilder, out: impl Into<PathBuf>) -> Result<Self, RotationError> {
        builder.check_rotation()?;
        let reach = builder.provider().reach();
        Ok(Self {
            builder,
            out: out.into(),
            reach,
            gate: tokio::sync::Mutex::new(None),
        })
    }

    /// With a rotation period: keeps a version the policy retired enabled
    /// while `page` shows it verified tokens within the last `window` (as
    /// [`RefresherBuilder::retire_unless_used`] does; `keyroll agent
    /// --retire-unless-used URL`). The page is read at every poll.
    #[must_use]
    pub fn retire_unless_used(self, page: impl UsageSource, window: Duration) -> Self {
        Self {
            gate: tokio::sync::Mutex::new(Some(UsageGate::new(page, window))),
            ..self
        }
    }

    /// The key file written.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Reads the store once and writes its answer (or marks the file
    /// unavailable when the store does not answer), then reports the
    /// policy's verdict on the answer in [`Polled::refused`].
    pub async fn poll(&self) -> Result<Polled, AgentError> {
        let out = &self.out;
        let (versions, rotation, retired) = match self.read_and_rotate().await {
            Ok(read) => read,
            Err(error) => {
                let marked = match mark_unavailable(out, SystemTime::now()) {
                    Ok(true) => Marked::Yes(out.clone()),
                    Ok(false) => Marked::NoFile,
                    Err(e) => Marked::Failed(out.clone(), e),
                };
                return Err(AgentError::Unreadable { error, marked });
            }
        };
        let contents = key_file_json(&versions, self.reach).map_err(|error| AgentError::Encode {
            error,
            out: out.clone(),
        })?;
        let written = write_if_changed(out, &contents).map_err(|error| AgentError::Write {
            error,
            out: out.clone(),
        })?;
        Ok(Polled {
            written,
            versions: versions.len(),
            newest: versions.first().map(|version| version.id.clone()),
            refused: self.builder.evaluate_once(&versions).err(),
            rotation,
            retired,
        })
    }

    /// What the store holds, after publishing the next key when one is due
    /// (an empty store reads as no versions then, and gets its first key)
    /// and retiring what the policy no longer uses after a key this agent
    /// published.
    async fn read_and_rotate(&self) -> Result<Read, RefreshError> {
        let Some(period) = self.builder.rotation_period() else {
            return Ok((self.builder.fetch_once().await?, None, None));
        };
        let versions = self.builder.fetch_for_rotation().await?;
        let mut gate = self.gate.lock().await;
        if let Some(gate) = gate.as_mut() {
            let ids: Vec<String> = versions.iter().map(|version| version.id.clone()).collect();
            // A failed read keeps every retired version enabled, and says so.
            let _ = gate.sample(&ids).await;
        }
        let form = self
            .builder
            .evaluate_once(&versions)
            .map_or(KeyForm::SIGNING, |set| KeyForm::of(&set));
        let policy = self.builder.effective_policy();
        let provider = self.builder.provider();
        // A store with stages: the new key must be made current to sign.
        let promote = provider.capabilities().promote;
        let attempt =
            rotation::publish_if_due(provider, &versions, period, form, &policy.strength, promote).await;
        let retired = match &attempt {
            Ok(Attempt::Published { .. }) if provider.capabilities().disable => {
                let gate = gate.as_mut().map(|gate| (gate, period));
                Some(rotation::retire(provider, &policy, SystemTime::now(), gate, |_| {}).await)
            }
            _ => None,
        };
        let versions = match attempt {
            // The store changed: write what it holds now.
            Ok(Attempt::Published { .. } | Attempt::Lost { .. }) => self.builder.fetch_once().await?,
            _ if versions.is_empty() => self.builder.fetch_once().await?,
            _ => versions,
        };
        Ok((versions, Some(attempt), retired))
    }

    /// Polls every interval of the builder ([`RefresherBuilder::interval`],
    /// at least [`MIN_INTERVAL`](crate::options::MIN_INTERVAL)), the first
    /// time after one interval, until `stop` completes, handing each result
    /// to `report`: a failed poll is reported and the next one comes as
    /// usual. One interval for both, so the activation delay that a rotation
    /// period is checked against ([`Agent::new`]) counts with the agent's
    /// own polls.
    pub async fn run(&self, stop: impl Future, mut report: impl FnMut(Result<Polled, AgentError>)) {
        let interval = self.builder.poll_interval().max(crate::options::MIN_INTERVAL);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => report(self.poll().await),
                _ = &mut stop => return,
            }
        }
    }
}
