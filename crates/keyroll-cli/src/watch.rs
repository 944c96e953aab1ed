//! `keyroll watch`: a line per key set change and, given a service's
//! metrics endpoint, per fallback key the verifications of the last window,
//! which tell when an old key is safe to retire.
//!
//! The watch process verifies nothing itself: the counts are the serving
//! process's `keyroll_verifications_total` (the `metrics` feature of the
//! `keyroll` crate, rendered in Prometheus' text format), read every
//! interval and kept in a [`UsageWindow`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use keyroll::metrics_page::UsageSource as _;
use keyroll::options::Options;
use keyroll::{Keyring, MetricsPage, UsageWindow};

use keyroll::ops::{self, rfc3339};

use crate::{Failure, Source, builder};

/// Where the usage counts come from.
pub(crate) struct Usage {
    page: MetricsPage,
    window: UsageWindow,
}

impl Usage {
    /// Reads `url` (a plain `http://` metrics endpoint) and keeps counts
    /// over `window`. Messages never show the URL's user info.
    pub(crate) fn new(url: &str, window: Duration) -> Result<Self, Failure> {
        let page = MetricsPage::new(url).map_err(|e| Failure::Error(format!("--metrics {e}")))?;
        if window.is_zero() {
            return Err(Failure::Error("--window must be longer than 0".to_owned()));
        }
        Ok(Self {
            page,
            window: UsageWindow::new(window),
        })
    }

    /// Reads the page once and adds the counts of the keys of `keyring`
    /// (and of a few others) to the window.
    async fn sample(&mut self, keyring: &Keyring) -> Result<(), String> {
        let known: Vec<String> = keyring
            .load()
            .keys()
            .iter()
            .map(|key| key.id().to_owned())
            .collect();
        let totals = self.page.verifications(&known).await?;
        self.window.sample(
            Instant::now(),
            totals.into_iter().map(|(id, n)| (Arc::from(id), n)),
        );
        Ok(())
    }

    /// One line: each fallback key with its verifications in the window.
    fn line(&self, keyring: &Keyring) -> String {
        let usage = self.window.fallback_usage(&keyring.load(), SystemTime::now());
        let window = seconds(self.window.window());
        if usage.is_empty() {
            return format!("no fallback key (window {window})");
        }
        let keys = usage
            .iter()
            .map(|key| {
                format!(
                    "{} {} in the last {} ({} in total)",
                    key.id,
                    key.verifications,
                    seconds(key.over),
                    key.total
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("fallback verifications (window {window}): {keys}")
    }
}

/// Whole seconds, as `--window` takes them.
fn seconds(span: Duration) -> String {
    format!("{}s", span.as_secs())
}

/// Prints the key set now and on every change until interrupted; with
/// `usage`, also every interval the fallback keys' recent verifications;
/// `options` are the refresher's.
pub(crate) async fn watch(
    source: &Source,
    options: &Options,
    mut usage: Option<Usage>,
) -> Result<(), Failure> {
    let interval = options.interval();
    let refresher = options.apply(builder(source)?).start().await.map_err(|e| {
        let message = e.to_string();
        match Failure::from(e.last) {
            Failure::Rejected(_) => Failure::Rejected(message),
            Failure::Error(_) => Failure::Error(message),
        }
    })?;
    let keyring = refresher.keyring().clone();
    let mut changes = keyring.subscribe();
    print_keys(&keyring);
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                print_keys(&keyring);
            }
            _ = ticks.tick(), if usage.is_some() => {
                if let Some(usage) = usage.as_mut() {
                    match usage.sample(&keyring).await {
                        Ok(()) => println!("{} {}", rfc3339(SystemTime::now()), usage.line(&keyring)),
                        Err(error) => eprintln!("keyroll watch: {error}; trying again in {}", seconds(interval)),
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    refresher.shutdown().await;
    Ok(())
}

fn print_keys(keyring: &Keyring) {
    let set = keyring.load();
    let line = ops::describe(&set, SystemTime::now())
        .iter()
        .map(|key| format!("{} {}", key.role, key.id))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{} generation {}: {line}",
        rfc3339(SystemTime::now()),
        keyring.generation()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_the_metrics_urls_user_info() {
        let hour = Duration::from_secs(3600);
        for url in [
            "https://user:pa55word@host/metrics",
            "http://user:pa55word@/metrics",
        ] {
            let Err(Failure::Error(message)) = Usage::new(url, hour) else {
                panic!("{url} is refused")
            };
            assert!(!message.contains("pa55word"), "{message}");
            assert!(message.contains("***@"), "{message}");
        }
        let usage = Usage::new("http://user:pa55word@127.0.0.1:9/metrics", hour).unwrap();
        assert_eq!(usage.page.shown(), "http://***@127.0.0.1:9/metrics");
    }

    #[test]
    fn only_plain_http_endpoints_and_a_positive_window_are_taken() {
        let hour = Duration::from_secs(3600);
        assert!(Usage::new("http://127.0.0.1:9185/metrics", hour).is_ok());
        for url in [
            "https://host/metrics",
            "127.0.0.1:9185",
            "not a url",
            "file:///metrics",
        ] {
            assert!(Usage::new(url, hour).is_err(), "{url}");
        }
        assert!(Usage::new("http://127.0.0.1:9185/metrics", Duration::ZERO).is_err());
    }
}
