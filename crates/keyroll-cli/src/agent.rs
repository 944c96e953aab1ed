//! `keyroll agent`: one poller per host or pod writes what the store holds to
//! a JSON key file that every process on the host reads with `file://PATH`.
//!
//! The file holds the store's versions as reported (ids, material, creation
//! times, states, stages), not the policy's output, and declares the store's
//! reach: readers of a shared store's copy stage activation from the store's
//! own times, so every process on every host switches at the same instant.

use std::path::Path;
use std::time::{Duration, SystemTime};

use keyroll::file::{key_file_json, write_if_changed};
use tokio::signal::unix::{SignalKind, signal};

use crate::{Failure, Source, builder, rfc3339};

/// Polls the source every `interval` and rewrites `out` when what the store
/// holds changed. The first poll must succeed (exit 1 for a weak or empty key
/// set, 2 for anything else); later failures keep the file as it is and are
/// logged. SIGTERM and SIGINT end it with success.
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
        match builder.load_once().await {
            // Written only when the policy accepts the set: a weak or empty
            // answer never replaces the last good file.
            Ok((versions, _)) => match write_if_changed(out, &key_file_json(&versions, reach)) {
                Ok(true) => println!(
                    "{} wrote {} version(s) to {} (newest {})",
                    rfc3339(SystemTime::now()),
                    versions.len(),
                    out.display(),
                    versions.first().map_or("-", |v| v.id.as_str()),
                ),
                Ok(false) => {}
                Err(error) if first => {
                    return Err(Failure::Error(format!("cannot write {}: {error}", out.display())));
                }
                Err(error) => eprintln!(
                    "keyroll: cannot write {}: {error}; keeping the last file",
                    out.display()
                ),
            },
            Err(error) if first => return Err(error.into()),
            Err(error) => eprintln!("keyroll: refresh failed: {error}; keeping the last good file"),
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
