//! Rotation once a period has passed, safe to run from every host at once
//! (`keyroll rotate --if-older-than`): the store's compare-and-set lets
//! exactly one of the writers that saw the same newest version publish.

use std::fmt;
use std::time::Duration;

use keyroll_core::RefresherBuilder;
use keyroll_core::rotation::{self, Attempt, RotationError};

use super::{
    KeyForm, OpError, RotateOptions, RotateStep, Rotation, after_publishing, refuse_what_the_store_cannot_do,
};

/// What [`rotate_if_older_than`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Due {
    /// This process published the new key.
    Rotated(Rotation),
    /// The newest key is younger than the period: nothing was written.
    NotDue {
        /// The newest usable version's id.
        newest: String,
        /// Its age, by the store's creation time.
        age: Duration,
    },
    /// Another writer published first (the store's compare-and-set refused
    /// this one): nothing was written by this process.
    Lost {
        /// The newest version this process saw, now superseded.
        superseded: Option<String>,
    },
}

impl fmt::Display for Due {
    /// The line `keyroll rotate --if-older-than` prints last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Due::Rotated(rotation) => write!(f, "rotated: {}", rotation.id),
            Due::NotDue { age, .. } => write!(f, "not due: the current key is {} old", age_text(*age)),
            Due::Lost { superseded: Some(id) } => write!(
                f,
                "not due: another process published a new key first (over version {id})"
            ),
            Due::Lost { superseded: None } => {
                f.write_str("not due: another process published the first key first")
            }
        }
    }
}

/// `age` in the largest two units: `3d 4h`, `2h 5m`, `40s`.
fn age_text(age: Duration) -> String {
    let seconds = age.as_secs();
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (size, unit) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 || (!parts.is_empty() && rest == 0) {
            break;
        }
    }
    parts.join(" ")
}

/// [`rotate`](super::rotate) once the newest usable key of the store is at
/// least `period` old (by the store's own creation time), or the store holds
/// no key yet; otherwise nothing.
///
/// The write is conditional on the newest version read
/// ([`KeyProvider::publish_if`](keyroll_core::KeyProvider::publish_if)), so
/// any number of processes running this at once, each seeing the same
/// store, publish exactly one key between them: the others get
/// [`Due::Lost`]. Safe to run from cron on every host.
///
/// # Errors
/// [`OpError::Unsupported`] when the store has no compare-and-set or keeps no
/// creation times (nothing is written); otherwise those of
/// [`rotate`](super::rotate).
pub async fn rotate_if_older_than(
    builder: &RefresherBuilder,
    period: Duration,
    options: &RotateOptions,
    on_step: impl FnMut(&RotateStep),
) -> Result<Due, OpError> {
    let provider = builder.provider();
    rotation::can_compare_and_set(provider).map_err(unsupported)?;
    refuse_what_the_store_cannot_do(provider, options)?;
    // A store without a key yet: the first key is due at once.
    let versions = builder.fetch_for_rotation().await?;
    let form = match options.form {
        Some(form) => form,
        None => builder
            .evaluate_once(&versions)
            .ok()
            .map_or(KeyForm::SIGNING, |set| KeyForm::of(&set)),
    };
    let strength = &builder.effective_policy().strength;
    // `--promote` promotes after the publish, as `keyroll rotate` does.
    match rotation::publish_if_due(provider, &versions, period, form, strength, false).await {
        Ok(Attempt::Published {
            published,
            fingerprint,
        }) => Ok(Due::Rotated(
            after_publishing(builder, options, fingerprint, published.id, on_step).await?,
        )),
        Ok(Attempt::NotDue { newest, age, .. }) => Ok(Due::NotDue { newest, age }),
        Ok(Attempt::Lost { superseded }) => Ok(Due::Lost { superseded }),
        Err(RotationError::KeyGen(error)) => Err(error.into()),
        Err(RotationError::Provider(error)) => Err(error.into()),
        Err(error) => Err(unsupported(error)),
    }
}

/// What the store cannot do (no compare-and-set, no creation times):
/// refused, nothing written.
fn unsupported(error: RotationError) -> OpError {
    OpError::Unsupported(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_two_units() {
        for (seconds, text) in [
            (0, "0s"),
            (40, "40s"),
            (60, "1m"),
            (125, "2m 5s"),
            (3_600, "1h"),
            (7_500, "2h 5m"),
            (86_400 * 3 + 3_600 * 4 + 17, "3d 4h"),
        ] {
            assert_eq!(age_text(Duration::from_secs(seconds)), text, "{seconds}");
        }
    }
}
