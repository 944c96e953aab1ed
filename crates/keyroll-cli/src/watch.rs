//! `keyroll watch`: a line per key set change and, given a service's
//! metrics endpoint, per fallback key the verifications of the last window,
//! which tell when an old key is safe to retire.
//!
//! The watch process verifies nothing itself: the counts are the serving
//! process's `keyroll_verifications_total` (the `metrics` feature of the
//! `keyroll` crate, rendered in Prometheus' text format), read every
//! interval and kept in a [`UsageWindow`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyroll::options::Options;
use keyroll::{Keyring, UsageWindow};

use keyroll::ops::{self, rfc3339};

use crate::{Failure, Source, builder};

/// The series whose per-key sums are the usage counts.
const VERIFICATIONS: &str = "keyroll_verifications_total";
/// A metrics page larger than this is refused (a service exports a few
/// series per key; 16 MiB is far beyond any real page).
const MAX_PAGE: usize = 16 << 20;
/// How long one read of the metrics endpoint may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Key ids a page may hold that the watched key set does not (yet): counted
/// up to this many per page, so a key the service knows before the watch
/// does has a history, while a page of a million ids costs no more than
/// this. Every id of the watched key set is always counted.
const MAX_UNKNOWN_IDS: usize = 64;
/// An unknown key id longer than this is not counted (store ids and
/// fingerprints are a few dozen bytes).
const MAX_UNKNOWN_ID_LEN: usize = 128;

/// Where the usage counts come from.
pub(crate) struct Usage {
    url: hyper::Uri,
    /// The URL as messages show it: user info replaced by `***`.
    shown: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    window: UsageWindow,
}

impl Usage {
    /// Reads `url` (a plain `http://` metrics endpoint) and keeps counts
    /// over `window`. Messages never show the URL's user info.
    pub(crate) fn new(url: &str, window: Duration) -> Result<Self, Failure> {
        let shown = keyroll::raw::remote::redact_userinfo(url).into_owned();
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| Failure::Error(format!("--metrics {shown:?} is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(Failure::Error(format!(
                "--metrics {shown:?}: give the service's metrics endpoint as http://HOST:PORT/PATH"
            )));
        }
        if window.is_zero() {
            return Err(Failure::Error("--window must be longer than 0".to_owned()));
        }
        Ok(Self {
            url: uri,
            shown,
            client: Client::builder(TokioExecutor::new()).build_http(),
            window: UsageWindow::new(window),
        })
    }

    /// Reads the endpoint once and adds the counts of the keys of `keyring`
    /// (and of at most [`MAX_UNKNOWN_IDS`] others) to the window.
    async fn sample(&mut self, keyring: &Keyring) -> Result<(), String> {
        let shown = &self.shown;
        let read = async {
            let response = self
                .client
                .get(self.url.clone())
                .await
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{shown} answered {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_PAGE)
                .collect()
                .await
                .map_err(|e| format!("cannot read {shown}: {e}"))?
                .to_bytes();
            String::from_utf8(body.to_vec()).map_err(|_| format!("{shown} answered a page that is not UTF-8"))
        };
        let page = tokio::time::timeout(SCRAPE_TIMEOUT, read)
            .await
            .map_err(|_| format!("{shown} did not answer within {SCRAPE_TIMEOUT:?}"))??;
        let set = keyring.load();
        let known: HashSet<&str> = set.keys().iter().map(|key| key.id()).collect();
        let totals = verifications_per_key(&page, &known);
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

/// The sum of every `keyroll_verifications_total` series per `key_id`
/// (over formats and roles) in a page of Prometheus' text format, for the
/// ids in `known` and the first [`MAX_UNKNOWN_IDS`] others (of at most
/// [`MAX_UNKNOWN_ID_LEN`] bytes). Lines that do not parse are skipped;
/// counts saturate.
fn verifications_per_key(page: &str, known: &HashSet<&str>) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    let mut unknown = 0;
    for line in page.lines() {
        let Some(rest) = line.trim_start().strip_prefix(VERIFICATIONS) else {
            continue;
        };
        let Some((labels, rest)) = rest.strip_prefix('{').and_then(split_labels) else {
            continue;
        };
        let Some(id) = labels
            .into_iter()
            .find_map(|(name, value)| (name == "key_id").then_some(value))
        else {
            continue;
        };
        let Some(value) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if !(value.is_finite() && value >= 0.0) {
            continue;
        }
        if !known.contains(id.as_str()) && !totals.contains_key(&id) {
            if unknown >= MAX_UNKNOWN_IDS || id.len() > MAX_UNKNOWN_ID_LEN {
                continue;
            }
            unknown += 1;
        }
        // `as` saturates: a count beyond u64 reads as u64::MAX.
        let count = totals.entry(id).or_insert(0u64);
        *count = count.saturating_add(value as u64);
    }
    totals
}

/// The labels of a series up to its closing `}` (`name="value"` pairs,
/// values with `\\`, `\"` and `\n` escapes) and the rest of the line.
fn split_labels(text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = rest.split_once('=')?;
        let mut chars = after.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    escaped => value.push(escaped),
                },
                (at, '"') => break at,
                (_, c) => value.push(c),
            }
        };
        labels.push((name.trim().to_owned(), value));
        rest = after[1 + end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
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
    fn sums_each_keys_series_over_formats_and_roles() {
        let page = "# HELP keyroll_verifications_total x\n\
            # TYPE keyroll_verifications_total counter\n\
            keyroll_verifications_total{key_id=\"v1\",role=\"fallback\",format=\"native\"} 3\n\
            keyroll_verifications_total{format=\"django\", key_id=\"v1\",role=\"current\"} 4 1700000000000\n\
            keyroll_verifications_total{key_id=\"a\\\"b\\\\c\\n\",role=\"current\",format=\"native\"} 2\n\
            keyroll_verifications_total_other{key_id=\"v1\"} 100\n\
            keyroll_key_role{key_id=\"v1\",role=\"current\"} 1\n";
        let totals = verifications_per_key(page, &HashSet::new());
        assert_eq!(totals.get("v1"), Some(&7));
        assert_eq!(totals.get("a\"b\\c\n"), Some(&2));
        assert_eq!(totals.len(), 2);
    }

    #[test]
    fn odd_pages_never_panic_and_count_nothing_they_cannot_read() {
        for page in [
            "keyroll_verifications_total{key_id=\"v1\" 3",
            "keyroll_verifications_total{key_id=\"v1",
            "keyroll_verifications_total{key_id=\"v1\\",
            "keyroll_verifications_total{key_id=v1} 3",
            "keyroll_verifications_total{role=\"current\"} 3",
            "keyroll_verifications_total{key_id=\"v1\"} NaN",
            "keyroll_verifications_total{key_id=\"v1\"} -1",
            "keyroll_verifications_total{key_id=\"v1\"}",
            "keyroll_verifications_total{key_id=\"é\"} x",
            "keyroll_verifications_total 3",
            "",
        ] {
            assert!(
                verifications_per_key(page, &HashSet::new()).is_empty(),
                "{page:?}"
            );
        }
        let huge = "keyroll_verifications_total{key_id=\"v1\"} 1e300\n".repeat(2);
        assert_eq!(
            verifications_per_key(&huge, &HashSet::new()).get("v1"),
            Some(&u64::MAX)
        );
    }

    #[test]
    fn random_pages_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let pieces = [
            "keyroll_verifications_total{",
            "key_id",
            "=",
            "\"",
            "\\",
            ",",
            "}",
            " ",
            "1",
            "9e99",
            "-",
            "é",
            "\n",
            "v1",
        ];
        for _ in 0..20_000 {
            let page: String = (0..rng.random_range(0..24))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            let _ = verifications_per_key(&page, &HashSet::from(["v1"]));
        }
    }

    /// Issue 24 item 6: every id of every page was kept for the whole
    /// window (366,240 ids every 300 ms: +222 MB in 20 s).
    #[test]
    fn a_page_of_many_ids_counts_the_watched_ones_and_a_few_others() {
        let page: String = (0..10_000)
            .map(|i| format!("keyroll_verifications_total{{key_id=\"u{i}\",role=\"fallback\"}} 1\n"))
            .chain([
                "keyroll_verifications_total{key_id=\"v2\",role=\"current\"} 5\n".to_owned(),
                format!(
                    "keyroll_verifications_total{{key_id=\"{}\"}} 1\n",
                    "x".repeat(200)
                ),
                "keyroll_verifications_total{key_id=\"u0\",role=\"current\"} 2\n".to_owned(),
            ])
            .collect();
        let totals = verifications_per_key(&page, &HashSet::from(["v2", "v1"]));
        assert_eq!(totals.len(), MAX_UNKNOWN_IDS + 1, "the watched id and 64 others");
        assert_eq!(totals.get("v2"), Some(&5), "a watched id past the cap is counted");
        assert_eq!(totals.get("u0"), Some(&3), "an id already counted keeps counting");
        assert!(!totals.contains_key(&format!("u{MAX_UNKNOWN_IDS}")));
    }

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
        assert_eq!(usage.shown, "http://***@127.0.0.1:9/metrics");
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
