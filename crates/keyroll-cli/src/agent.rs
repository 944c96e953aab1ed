//! `keyroll agent`: the library's [`Agent`] (`keyroll::ops`), run until a
//! signal, printing what each poll did. What the file holds and why is in
//! the library's module docs.

use std::path::Path;
use std::time::Duration;

use keyroll::MetricsPage;
use keyroll::ops::{Agent, AgentError};
use tokio::signal::unix::{SignalKind, signal};

use crate::{Failure, Source, builder};

/// `--rotate-every`, `--retire-unless-used` and `--usage-window`.
pub(crate) struct Rotation {
    pub(crate) every: Option<Duration>,
    pub(crate) retire_unless_used: Option<String>,
    pub(crate) usage_window: Duration,
}

/// Polls the source every `interval` and rewrites `out` when what the store
/// holds changed. A failure of the first poll ends it (exit 1 for a key set
/// the policy refuses, which is written all the same; 2 for anything else);
/// later failures are logged. SIGTERM and SIGINT end it with success.
pub(crate) async fn agent(
    source: &Source,
    out: &Path,
    interval: Duration,
    rotation: Rotation,
    once: bool,
) -> Result<(), Failure> {
    let mut builder = builder(source)?.interval(interval);
    if let Some(period) = rotation.every {
        builder = builder.rotate_every(period);
    }
    let mut agent = Agent::new(builder, out).map_err(|error| Failure::Error(error.to_string()))?;
    if let Some(url) = rotation.retire_unless_used {
        let page = MetricsPage::new(&url).map_err(|e| Failure::Error(format!("--retire-unless-used {e}")))?;
        agent = agent.retire_unless_used(page, rotation.usage_window);
    }
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| Failure::Error(format!("cannot listen for SIGTERM: {e}")))?;
    report(&agent, agent.poll().await)?;
    if once {
        return Ok(());
    }
    let stop = async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    agent
        .run(stop, |poll| {
            if let Err(Failure::Rejected(reason) | Failure::Error(reason)) = report(&agent, poll) {
                eprintln!("keyroll: {reason}");
            }
        })
        .await;
    Ok(())
}

/// Prints a write, and turns a failed poll or a refused answer into the
/// failure the command exits with.
fn report(agent: &Agent, poll: Result<keyroll::ops::Polled, AgentError>) -> Result<(), Failure> {
    let polled = match poll {
        Ok(polled) => polled,
        Err(AgentError::Unreadable { error, marked }) => {
            return Err(match Failure::from(error) {
                Failure::Rejected(reason) => Failure::Rejected(format!("{reason}{marked}")),
                Failure::Error(reason) => Failure::Error(format!("cannot read the store: {reason}{marked}")),
            });
        }
        Err(other) => return Err(Failure::Error(other.to_string())),
    };
    for line in polled.rotation_lines() {
        println!("{line}");
    }
    if let Some(line) = polled.line(agent.out()) {
        println!("{line}");
    }
    match polled.refused {
        None => Ok(()),
        Some(error) => Err(match Failure::from(error) {
            Failure::Rejected(reason) | Failure::Error(reason) => Failure::Rejected(format!(
                "{reason} (written to {} as the store holds it: its readers refuse it as the store's readers do)",
                agent.out().display()
            )),
        }),
    }
}
