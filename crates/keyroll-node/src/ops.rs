//! `rotate` and `NativeRing.rotate`: the library's rotation
//! (`keyroll::ops::rotate_collected`, what `keyroll rotate` runs), off the
//! event loop.

use std::time::UNIX_EPOCH;

use keyroll::Refresher;
use keyroll::ops::{self, RotateFailure, RotateOptions};
use keyroll::options::Options;
use napi::bindgen_prelude::{AsyncTask, Either, Env, Task};
use napi_derive::napi;

use crate::errors::{Code, Result, error};
use crate::options::{NamedValue, parse};
use crate::ring::{Failure, NativeRing};

/// What `rotate` takes besides the store's options.
#[napi(object)]
pub struct RotateArgs {
    /// Characters of Django's alphabet.
    pub chars: Option<f64>,
    /// Random bytes (written as base64).
    pub bytes: Option<f64>,
    /// Make the new version the store's current one.
    pub promote: Option<bool>,
    /// Disable the versions the policy has retired.
    pub disable_old: Option<bool>,
}

/// What a rotation did.
#[napi(object)]
pub struct Rotated {
    pub id: String,
    pub fingerprint: String,
    pub promoted: bool,
    /// `current` or `pending`; `null` when the policy does not use it yet.
    pub role: Option<String>,
    /// When it signs from (Unix seconds), when the store's times say.
    pub signs_from: Option<f64>,
    /// The versions disabled as retired.
    pub disabled: Vec<String>,
    /// The lines `keyroll rotate` prints.
    pub steps: Vec<String>,
}

/// `chars` or `bytes` as a count: a whole number not below zero (the
/// library bounds the length).
fn count(name: &str, value: Option<f64>) -> Result<Option<usize>> {
    value
        .map(|value| {
            if value.is_finite() && value.fract() == 0.0 && value >= 0.0 {
                // Whole and finite: the cast saturates, which the library refuses as too long.
                Ok(value as usize)
            } else {
                Err(error(
                    Code::Config,
                    format!("{name} must be a whole number, not {value}"),
                ))
            }
        })
        .transpose()
}

/// A failed rotation as the code and message `index.js` throws.
fn failed(failure: &RotateFailure) -> (Code, String) {
    (Code::of(failure.error.kind()), failure.to_string())
}

/// The rotation asked for: refused (a `config` error) before any request.
fn rotate_options(args: &RotateArgs) -> Result<RotateOptions> {
    RotateOptions::asked(
        count("chars", args.chars)?,
        count("bytes", args.bytes)?,
        args.promote.unwrap_or(false),
        args.disable_old.unwrap_or(false),
    )
    .map_err(|failure| {
        let (code, message) = failed(&failure);
        error(code, message)
    })
}

/// A rotation's work, off the event loop (libuv's thread pool).
pub struct Rotate {
    uri: String,
    options: Options,
    rotate: RotateOptions,
}

impl Rotate {
    pub(crate) fn new(uri: String, options: Options, args: &RotateArgs) -> Result<AsyncTask<Self>> {
        Ok(AsyncTask::new(Self {
            uri,
            options,
            rotate: rotate_options(args)?,
        }))
    }

    fn run(&self) -> std::result::Result<Rotated, (Code, String)> {
        let provider = keyroll::open(&self.uri).map_err(|e| (Code::Config, e.to_string()))?;
        let builder = self.options.apply(Refresher::builder(provider));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| (Code::Unavailable, format!("cannot start a runtime: {e}")))?;
        let (rotation, steps) = runtime
            .block_on(ops::rotate_collected(&builder, &self.rotate))
            .map_err(|failure| failed(&failure))?;
        Ok(Rotated {
            id: rotation.id,
            fingerprint: rotation.fingerprint,
            promoted: rotation.promoted,
            role: rotation.role.map(|role| role.to_string()),
            signs_from: rotation
                .signs_from
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map(|at| at.as_secs_f64()),
            disabled: rotation.disabled,
            steps: steps.iter().map(ToString::to_string).collect(),
        })
    }
}

impl Task for Rotate {
    type Output = std::result::Result<Rotated, (Code, String)>;
    type JsValue = Either<Rotated, Failure>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(match output {
            Ok(rotated) => Either::A(rotated),
            Err((code, message)) => Either::B(Failure {
                code: code.as_ref().to_owned(),
                message,
            }),
        })
    }
}

/// Publishes a new key in the store `uri` names, with `options` (the
/// library's table, as `open` takes them) deciding when it signs and what is
/// retired; resolves with what was done, or with why not.
#[napi]
pub fn rotate(uri: String, options: Vec<NamedValue>, args: RotateArgs) -> Result<AsyncTask<Rotate>> {
    Rotate::new(uri, parse(&options)?, &args)
}

#[napi]
impl NativeRing {
    /// Publishes a new key in this ring's store, with the options the ring
    /// was opened with; the ring picks it up at its next poll.
    #[napi]
    pub fn rotate(&self, args: RotateArgs) -> Result<AsyncTask<Rotate>> {
        let engine = self.hold().engine()?;
        Rotate::new(engine.uri.clone(), engine.options.clone(), &args)
    }
}

#[cfg(test)]
mod tests {
    use keyroll::ops::KeyForm;

    use super::*;

    fn args(chars: Option<f64>, bytes: Option<f64>) -> RotateArgs {
        RotateArgs {
            chars,
            bytes,
            promote: None,
            disable_old: None,
        }
    }

    #[test]
    fn the_key_asked_for_is_checked_before_any_request() {
        let form = |chars, bytes| rotate_options(&args(chars, bytes)).map(|options| options.form);
        assert_eq!(form(None, None).ok(), Some(None));
        assert_eq!(form(Some(64.0), None).ok(), Some(Some(KeyForm::Chars(64))));
        for refused in [
            form(Some(64.0), Some(32.0)),
            form(Some(1.5), None),
            form(None, Some(-1.0)),
            form(None, Some(f64::NAN)),
        ] {
            assert!(refused.is_err());
        }
    }
}
