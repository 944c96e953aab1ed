//! Operations on a key source, the same from every front door: the `keyroll`
//! command, the Python package (`keyroll.rotate`, `KeyRing.rotate`) and
//! Django's `manage.py keyroll rotate` call these, never a copy of them.
//!
//! - [`generate`]: a new random key of a [`KeyForm`], refused below the
//!   strength every replica checks;
//! - [`describe`]: what a key set serves, key by key (ids, roles, the
//!   moments roles change; never material);
//! - [`rotate`]: publish a new key, optionally promote it, optionally disable
//!   what the policy has retired, reporting each step as it is done;
//! - [`rotate_if_older_than`]: the same once the newest key is older than a
//!   period, with the store's compare-and-set, so that many hosts running it
//!   at once publish exactly one key (cron on every host);
//! - [`Agent`] (with the `file` feature): copy what a store holds to a key
//!   file for every process on a host, again whenever it changes.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use keyroll::ops::{self, RotateOptions};
//!
//! let builder = keyroll::Refresher::builder(keyroll::open("file:///etc/myapp/keys")?);
//! let rotation = ops::rotate(&builder, &RotateOptions::default(), |step| println!("{step}")).await?;
//! println!("published {}", rotation.id);
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::SystemTime;

use keyroll_core::rotation;
use keyroll_core::{
    KeyProvider, KeySet, PolicyError, ProviderError, RefreshError, RefresherBuilder, Role, StartFailure,
};

mod due;
pub use due::{Due, rotate_if_older_than};

#[cfg(feature = "file")]
mod agent;
#[cfg(feature = "file")]
pub use agent::{Agent, AgentError, Marked, Polled};

pub use keyroll_core::keygen::{
    DJANGO_ALPHABET, DJANGO_KEY_CHARS, FERNET_KEY_BYTES, KeyForm, KeyGenError, MAX_KEY_LENGTH, generate,
};

/// Why an operation failed. The messages name no key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The key asked for is empty or would be weak: nothing was written.
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
    /// The store cannot do what was asked (its provider's
    /// [`Capabilities`](keyroll_core::Capabilities) say so): refused before
    /// anything was written.
    #[error("{0}; nothing was published")]
    Unsupported(String),
    /// The store refused or failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Reading the source back failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The policy refused the store's versions.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl OpError {
    /// The kind every binding raises for it, as for a failed start
    /// ([`StartFailure`]): `Config` for what was asked (a key, a step the store
    /// cannot do, a store keyroll cannot write), `Keys` for a refused key set,
    /// `Unavailable` for a store that did not answer.
    pub fn kind(&self) -> StartFailure {
        match self {
            Self::KeyGen(_) | Self::Unsupported(_) => StartFailure::Config,
            Self::Provider(error) => StartFailure::of_provider(error.kind()),
            Self::Refresh(error) => StartFailure::of_refresh(error),
            Self::Policy(_) => StartFailure::Keys,
        }
    }
}

/// `at` in RFC 3339, or "never (beyond year 9999)" for a moment past what
/// RFC 3339 can write (a fallback window of `u64::MAX` seconds reaches it).
pub fn rfc3339(at: SystemTime) -> String {
    let Ok(since) = at.duration_since(SystemTime::UNIX_EPOCH) else {
        return format!("{at:?}");
    };
    i64::try_from(since.as_secs())
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "never (beyond year 9999)".to_owned())
}

/// When a key's role changes next, as [`describe`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Moment {
    /// The signing key, until the moment if one is known.
    SignsUntil(Option<SystemTime>),
    /// Verify-only; signs from the moment if one is known.
    SignsFrom(Option<SystemTime>),
    /// A fallback, until the moment if one is known.
    VerifiesUntil(Option<SystemTime>),
    /// No longer verifies.
    Retired,
}

/// One key of a set as [`describe`] reports it: never its material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyDescription {
    /// The key's role at the moment described.
    pub role: Role,
    /// The store's version id.
    pub id: String,
    /// The key's fingerprint (a file store's id is its fingerprint).
    pub fingerprint: String,
    /// When its role changes.
    pub moment: Moment,
}

impl fmt::Display for KeyDescription {
    /// `role id when`, with the fingerprint after when the id is not it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = match self.moment {
            Moment::SignsUntil(Some(until)) => format!("signing until {}", rfc3339(until)),
            Moment::SignsUntil(None) => "signing".to_owned(),
            Moment::SignsFrom(Some(from)) => format!("verify-only, signs from {}", rfc3339(from)),
            Moment::SignsFrom(None) => "verify-only".to_owned(),
            Moment::VerifiesUntil(Some(until)) => format!("verifies until {}", rfc3339(until)),
            Moment::VerifiesUntil(None) => "verifies".to_owned(),
            Moment::Retired => "no longer verifies".to_owned(),
        };
        let role = self.role.to_string();
        if self.id == self.fingerprint {
            write!(f, "{role:<9} {:<16} {when}", self.fingerprint)
        } else {
            write!(f, "{role:<9} {:<16} {when} ({})", self.id, self.fingerprint)
        }
    }
}

/// Every key of `set` at `now`, in the set's order.
pub fn describe(set: &KeySet, now: SystemTime) -> Vec<KeyDescription> {
    set.keys()
        .iter()
        .map(|key| {
            let role = key.role_at(now);
            let moment = match role {
                Role::Current => Moment::SignsUntil(key.signs_until()),
                Role::Pending => Moment::SignsFrom(key.signs_from()),
                Role::Fallback => Moment::VerifiesUntil(key.verifies_until()),
                _ => Moment::Retired,
            };
            KeyDescription {
                role,
                id: key.id().to_owned(),
                fingerprint: key.material().fingerprint(),
                moment,
            }
        })
        .collect()
}

/// What [`rotate`] does besides publishing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotateOptions {
    /// The new key's form; `None`: the form of the key the source signs with
    /// now ([`KeyForm::of`]), or a signing key when it serves none.
    pub form: Option<KeyForm>,
    /// Make the new version the store's current one (stores with stages).
    pub promote: bool,
    /// Disable the versions the policy has retired (stores with states).
    pub disable_old: bool,
}

impl RotateOptions {
    /// The rotation a door's arguments ask for: a key of `chars` characters
    /// or `bytes` bytes ([`KeyForm::asked`]; neither: the form of the key
    /// served now), promoted and disabling as asked.
    ///
    /// # Errors
    /// [`KeyGenError::TwoForms`] when both `chars` and `bytes` are given, as
    /// a [`RotateFailure`] that did nothing, as [`rotate_collected`] reports
    /// a key it refused.
    pub fn asked(
        chars: Option<usize>,
        bytes: Option<usize>,
        promote: bool,
        disable_old: bool,
    ) -> Result<Self, RotateFailure> {
        let form = KeyForm::asked(chars, bytes).map_err(|error| RotateFailure {
            error: error.into(),
            done: Vec::new(),
        })?;
        Ok(Self {
            form,
            promote,
            disable_old,
        })
    }

    /// Publishes a key of `form`.
    #[must_use]
    pub fn form(mut self, form: KeyForm) -> Self {
        self.form = Some(form);
        self
    }

    /// Promotes the new version.
    #[must_use]
    pub fn promote(mut self, promote: bool) -> Self {
        self.promote = promote;
        self
    }

    /// Disables the versions the policy has retired.
    #[must_use]
    pub fn disable_old(mut self, disable_old: bool) -> Self {
        self.disable_old = disable_old;
        self
    }
}

/// One step [`rotate`] has done, reported as soon as it is done (a later
/// failure does not hide what was already written).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateStep {
    /// The new version is in the store.
    Published {
        /// Its id.
        id: String,
        /// Its fingerprint.
        fingerprint: String,
    },
    /// It is the store's current version.
    Promoted {
        /// Its id.
        id: String,
    },
    /// What the policy makes of it, read back from the store.
    Serving {
        /// Its role now; `None` when the policy does not use it yet.
        role: Option<Role>,
        /// When it starts signing, if it is pending with a known moment.
        signs_from: Option<SystemTime>,
    },
    /// A version the policy retired is disabled.
    Disabled {
        /// Its id.
        id: String,
    },
}

impl fmt::Display for RotateStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Published { id, fingerprint } if id == fingerprint => {
                write!(f, "published new key version {id}")
            }
            Self::Published { id, fingerprint } => {
                write!(f, "published new key version {id} ({fingerprint})")
            }
            Self::Promoted { id } => write!(f, "version {id} is now the store's current version"),
            Self::Serving {
                role: Some(Role::Current),
                ..
            } => f.write_str("it signs now"),
            Self::Serving {
                role: Some(_),
                signs_from: Some(from),
            } => write!(f, "it verifies now and starts signing at {}", rfc3339(*from)),
            Self::Serving { role: Some(_), .. } => {
                f.write_str("it verifies now; it signs once the store makes it current")
            }
            Self::Serving { role: None, .. } => {
                f.write_str("the policy does not use it yet; run `keyroll check` to see why")
            }
            Self::Disabled { id } => write!(f, "disabled version {id} (retired by the policy)"),
        }
    }
}

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// The new version's id.
    pub id: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Whether it was promoted.
    pub promoted: bool,
    /// Its role once read back; `None` when the policy does not use it yet.
    pub role: Option<Role>,
    /// When it starts signing, if pending with a known moment.
    pub signs_from: Option<SystemTime>,
    /// The versions disabled as retired.
    pub disabled: Vec<String>,
}

/// Publishes a new key in the source of `builder` (whose policy decides when
/// it signs, and what is retired), then promotes it and disables retired
/// versions when `options` ask. Each step is passed to `on_step` once done.
///
/// The key is generated before anything is written and refused when weak,
/// so a failure before [`RotateStep::Published`] wrote nothing.
///
/// # Errors
/// [`OpError::Unsupported`] when the store cannot promote or disable and
/// that was asked; [`OpError::KeyGen`] for the key asked for (empty or weak); the
/// provider's error when the store refuses (a store keyroll cannot write
/// answers [`Unsupported`](keyroll_core::ProviderErrorKind::Unsupported));
/// a refresh or policy error when the store cannot be read back.
pub async fn rotate(
    builder: &RefresherBuilder,
    options: &RotateOptions,
    on_step: impl FnMut(&RotateStep),
) -> Result<Rotation, OpError> {
    let provider = builder.provider();
    refuse_what_the_store_cannot_do(provider, options)?;
    let form = match options.form {
        Some(form) => form,
        // A store that cannot be read publishes a signing key, as a new one would.
        None => builder
            .load_once()
            .await
            .ok()
            .map_or(KeyForm::SIGNING, |(_, set)| KeyForm::of(&set)),
    };
    // Every replica refuses a weak key: never publish one.
    let material = generate(form, &builder.effective_policy().strength)?;
    let published = provider.rotate(&material).await?;
    after_publishing(builder, options, material.fingerprint(), published.id, on_step).await
}

/// A [`rotate_collected`] that failed, with the steps done before it: a door
/// that does not print steps as they come (Python, Node) reports them in its
/// error, so nothing already written goes unsaid.
#[derive(Debug)]
#[non_exhaustive]
pub struct RotateFailure {
    /// Why it failed.
    pub error: OpError,
    /// What was done before it failed, in order; empty when nothing was
    /// written.
    pub done: Vec<RotateStep>,
}

impl fmt::Display for RotateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let OpError::KeyGen(_) = self.error {
            return f.write_str("; nothing was published");
        }
        let mut done = self.done.iter();
        if let Some(first) = done.next() {
            write!(f, " (done before it failed: {first}")?;
            for step in done {
                write!(f, "; {step}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for RotateFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// [`rotate`], collecting its steps: the rotation and what was done, or the
/// failure with what was done before it (what `keyroll.rotate` in Python and
/// Node return and raise).
///
/// # Errors
/// [`rotate`]'s, with the steps done before it.
pub async fn rotate_collected(
    builder: &RefresherBuilder,
    options: &RotateOptions,
) -> Result<(Rotation, Vec<RotateStep>), RotateFailure> {
    let mut done = Vec::new();
    match rotate(builder, options, |step: &RotateStep| done.push(step.clone())).await {
        Ok(rotation) => Ok((rotation, done)),
        Err(error) => Err(RotateFailure { error, done }),
    }
}

/// What the store cannot do is refused before anything is written (a store
/// that cannot publish at all refuses the publish itself).
fn refuse_what_the_store_cannot_do(
    provider: &dyn KeyProvider,
    options: &RotateOptions,
) -> Result<(), OpError> {
    let capabilities = provider.capabilities();
    if options.promote && !capabilities.promote {
        return Err(OpError::Unsupported(format!(
            "{} has no stages to promote a version in",
            provider.source()
        )));
    }
    if options.disable_old && !capabilities.disable {
        return Err(OpError::Unsupported(format!(
            "{} cannot disable versions (rotate without disabling old ones, and retire them in the store)",
            provider.source()
        )));
    }
    Ok(())
}

/// Reports the publish of `id`, then promotes it, reads the store back and
/// disables what the policy retired, as `options` ask.
async fn after_publishing(
    builder: &RefresherBuilder,
    options: &RotateOptions,
    fingerprint: String,
    id: String,
    mut on_step: impl FnMut(&RotateStep),
) -> Result<Rotation, OpError> {
    let provider = builder.provider();
    on_step(&RotateStep::Published {
        id: id.clone(),
        fingerprint: fingerprint.clone(),
    });
    if options.promote {
        provider.promote(&id).await?;
        on_step(&RotateStep::Promoted { id: id.clone() });
    }
    let (_, set) = builder.load_once().await?;
    let now = SystemTime::now();
    let (role, signs_from) = match set.key(&id) {
        Some(key) => (Some(key.role_at(now)), key.signs_from()),
        None => (None, None),
    };
    on_step(&RotateStep::Serving { role, signs_from });
    let disabled = if options.disable_old {
        rotation::retire(provider, &builder.effective_policy(), now, None, |id| {
            on_step(&RotateStep::Disabled { id: id.to_owned() });
        })
        .await?
        .disabled
    } else {
        Vec::new()
    };
    Ok(Rotation {
        id,
        fingerprint,
        promoted: options.promote,
        role,
        signs_from,
        disabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_descriptions_read_as_the_cli_prints_them() {
        let published = RotateStep::Published {
            id: "3".to_owned(),
            fingerprint: "k-0123".to_owned(),
        };
        assert_eq!(published.to_string(), "published new key version 3 (k-0123)");
        let serving = RotateStep::Serving {
            role: Some(Role::Pending),
            signs_from: Some(SystemTime::UNIX_EPOCH),
        };
        assert_eq!(
            serving.to_string(),
            "it verifies now and starts signing at 1970-01-01T00:00:00Z"
        );
        let key = KeyDescription {
            role: Role::Fallback,
            id: "k-0123".to_owned(),
            fingerprint: "k-0123".to_owned(),
            moment: Moment::VerifiesUntil(None),
        };
        assert_eq!(key.to_string(), "fallback  k-0123           verifies");
    }

    #[tokio::test]
    async fn a_collected_rotation_says_what_it_did_and_a_failure_what_it_had_done() {
        let store = keyroll_testkit::memory::MemoryStore::new();
        store.add(
            "collected-rotation-key-0123456789abcdefghijklmnop",
            std::time::Duration::from_secs(3600),
        );
        let builder = keyroll_core::Refresher::builder(store.clone());
        let (rotation, done) = rotate_collected(&builder, &RotateOptions::default())
            .await
            .expect("rotates");
        assert!(matches!(&done[0], RotateStep::Published { id, .. } if *id == rotation.id));
        assert_eq!(store.versions().len(), 2);

        // Refused before anything is written: said so, nothing lost.
        let refused = rotate_collected(&builder, &RotateOptions::default().promote(true))
            .await
            .expect_err("the memory store has no stages");
        assert!(refused.done.is_empty());
        assert!(
            refused.to_string().ends_with("; nothing was published"),
            "{refused}"
        );
        let weak = rotate_collected(&builder, &RotateOptions::default().form(KeyForm::Chars(5)))
            .await
            .expect_err("weak");
        assert!(weak.to_string().ends_with("; nothing was published"), "{weak}");
        let both = RotateOptions::asked(Some(50), Some(32), false, false).expect_err("two forms");
        assert!(matches!(both.error, OpError::KeyGen(KeyGenError::TwoForms)) && both.done.is_empty());
        assert!(
            both.to_string().ends_with("not both; nothing was published"),
            "{both}"
        );
        let asked = RotateOptions::asked(None, Some(32), true, true).expect("one form");
        assert_eq!(
            asked,
            RotateOptions::default()
                .form(KeyForm::FERNET)
                .promote(true)
                .disable_old(true)
        );
        assert_eq!(store.versions().len(), 2);

        // A failure after a write names the write.
        let failure = RotateFailure {
            error: OpError::Provider(ProviderError::new(
                keyroll_core::ProviderErrorKind::PermissionDenied,
                "disable refused",
            )),
            done: vec![
                RotateStep::Published {
                    id: "7".to_owned(),
                    fingerprint: "k-7".to_owned(),
                },
                RotateStep::Promoted { id: "7".to_owned() },
            ],
        };
        assert_eq!(
            failure.to_string(),
            format!(
                "{} (done before it failed: published new key version 7 (k-7); version 7 is now the \
                 store's current version)",
                failure.error
            )
        );
    }
}
