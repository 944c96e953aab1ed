//! `generate`, `check` and `rotate`: the library's operations (`keyroll::ops`), printed.

use std::time::{Duration, SystemTime};

use keyroll::ops::{self, KeyForm, KeyGenError, OpError, RotateOptions, RotateStep};

use crate::args::{KeyKind, KeyUse};
use crate::{Failure, Source, builder, load};

/// The form `--chars`/`--bytes` ask for, if either is given.
pub(crate) fn asked_form(kind: &KeyKind) -> Result<Option<KeyForm>, Failure> {
    KeyForm::asked(kind.chars, kind.bytes).map_err(|error| op_failure(error.into()))
}

/// What an operation's failure exits with, in the flags' words.
pub(crate) fn op_failure(error: OpError) -> Failure {
    match error {
        OpError::KeyGen(KeyGenError::Empty(form)) => Failure::Error(format!(
            "--{} must be at least 1",
            match form {
                KeyForm::Bytes(_) => "bytes",
                _ => "chars",
            }
        )),
        OpError::KeyGen(KeyGenError::Weak { weakness, min }) => Failure::Error(format!(
            "the generated key would be weak ({weakness}); keyroll and every replica refuse it: \
             use at least --chars {min} or --bytes {min}"
        )),
        OpError::Provider(error) => error.into(),
        OpError::Refresh(error) => error.into(),
        OpError::Policy(error) => Failure::Rejected(error.to_string()),
        other => Failure::Error(other.to_string()),
    }
}

pub(crate) async fn check(source: &Source) -> Result<(), Failure> {
    let set = load(source).await?;
    println!("{}", source.keys);
    for key in ops::describe(&set, SystemTime::now()) {
        println!("  {key}");
    }
    Ok(())
}

pub(crate) async fn rotate(
    source: &Source,
    kind: KeyKind,
    key_use: Option<KeyUse>,
    promote: bool,
    disable_old: bool,
    if_older_than: Option<Duration>,
) -> Result<(), Failure> {
    let mut options = RotateOptions::asked(kind.chars, kind.bytes, promote, disable_old)
        .map_err(|failure| op_failure(failure.error))?;
    options.form = options.form.or(key_use.map(|key_use| match key_use {
        KeyUse::Fernet => KeyForm::FERNET,
        KeyUse::Signing => KeyForm::SIGNING,
    }));
    let builder = builder(source)?;
    let print = |step: &RotateStep| println!("{step}");
    let done = match if_older_than {
        Some(period) => ops::rotate_if_older_than(&builder, period, &options, print)
            .await
            .map(|due| println!("{due}")),
        None => ops::rotate(&builder, &options, print).await.map(drop),
    };
    done.map_err(|error| {
        // Refused before anything was written.
        let unwritten = matches!(error, OpError::KeyGen(_));
        match op_failure(error) {
            Failure::Error(reason) if unwritten => Failure::Error(format!("{reason}; nothing was published")),
            other => other,
        }
    })?;
    Ok(())
}
