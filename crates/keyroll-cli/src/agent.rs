//! `keyroll agent`: one poller per host or pod writes what the store holds to
//! a JSON key file that every process on the host reads with `file://PATH`.
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

use std::path::Path;
use std::time::{Duration, SystemTime};

use keyroll::file::{key_file_json, mark_unavailable, write_if_changed};
use keyroll::{Reach, RefresherBuilder};
use tokio::signal::unix::{SignalKind, signal};

use keyroll::ops::rfc3339;

use crate::{Failure, Source, builder};

/// Polls the source every `interval` and rewrites `out` when what the store
/// holds changed. A failure of the first poll ends it (exit 1 for a key set
/// the policy refuses, which is written all the same; 2 for anything else);
/// later failures are logged. SIGTERM and SIGINT end it with success.
pub(crate) async fn agent(
    source: &Source,
    out: &Path,
    interval: Duration,
    once: bool,
) -> Result<(), Failure> {
    if interval.is_zero() {
        return Err(Failure::Error("--interval must be more than 0s".into()));
    }
    let builder = builder(source)?;
    let reach = builder.provider().reach();
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| Failure::Error(format!("cannot listen for SIGTERM: {e}")))?;
    let mut first = true;
    loop {
        match poll(&builder, out, reach).await {
            Ok(()) => {}
            Err(failure) if first => return Err(failure),
            Err(Failure::Rejected(reason) | Failure::Error(reason)) => eprintln!("keyroll: {reason}"),
        }
        if once {
            return Ok(());
        }
        first = false;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Reads the store once and writes its answer to `out` (or marks `out`
/// unavailable when the store does not answer), then reports the policy's
/// verdict on the answer: the one every reader of the file reaches.
async fn poll(builder: &RefresherBuilder, out: &Path, reach: Reach) -> Result<(), Failure> {
    let versions = match builder.fetch_once().await {
        Ok(versions) => versions,
        Err(error) => {
            let marked = match mark_unavailable(out, SystemTime::now()) {
                Ok(true) => format!("; marked {} unavailable until it answers", out.display()),
                Ok(false) => String::new(),
                Err(e) => format!("; cannot mark {} unavailable: {e}", out.display()),
            };
            return Err(match Failure::from(error) {
                Failure::Rejected(reason) => Failure::Rejected(format!("{reason}{marked}")),
                Failure::Error(reason) => Failure::Error(format!("cannot read the store: {reason}{marked}")),
            });
        }
    };
    let contents = key_file_json(&versions, reach)
        .map_err(|e| Failure::Error(format!("{e}; {} is kept as it is", out.display())))?;
    match write_if_changed(out, &contents) {
        Ok(true) => println!(
            "{} wrote {} version(s) to {} (newest {})",
            rfc3339(SystemTime::now()),
            versions.len(),
            out.display(),
            versions.first().map_or("-", |v| v.id.as_str()),
        ),
        Ok(false) => {}
        Err(error) => return Err(Failure::Error(format!("cannot write {}: {error}", out.display()))),
    }
    builder.evaluate_once(&versions).map(drop).map_err(|error| {
        match Failure::from(error) {
            Failure::Rejected(reason) | Failure::Error(reason) => Failure::Rejected(format!(
                "{reason} (written to {} as the store holds it: its readers refuse it as the store's readers do)",
                out.display()
            )),
        }
    })
}
