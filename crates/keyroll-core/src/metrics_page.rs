//! Key usage from a metrics page: the sums of a fleet's
//! `keyroll_verifications_total` per key, in Prometheus' text format (a
//! service's own `/metrics`, or a Prometheus `/federate` page that gathers
//! every replica's). `keyroll watch --metrics` shows them; automatic
//! rotation keeps a key the page shows in use
//! ([`RefresherBuilder::retire_unless_used`](crate::RefresherBuilder::retire_unless_used)).
//!
//! The parser is this module's own: the text format's sample line is all it
//! reads, and a crate for it would bring a regex engine and a date library
//! for that. Pages are outside data: nothing in one panics, sizes and ids
//! are bounded.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use async_trait::async_trait;

/// The series whose per-key sums are the usage counts.
pub const VERIFICATIONS: &str = "keyroll_verifications_total";
/// A metrics page larger than this is refused (a service exports a few
/// series per key; 16 MiB is far beyond any real page).
pub const MAX_PAGE: usize = 16 << 20;
/// Key ids a page may hold that the watched key set does not (yet): counted
/// up to this many per page, so a key the service knows before the watch
/// does has a history, while a page of a million ids costs no more than
/// this. Every id of the watched key set is always counted.
pub const MAX_UNKNOWN_IDS: usize = 64;
/// An unknown key id longer than this is not counted (store ids and
/// fingerprints are a few dozen bytes).
pub const MAX_UNKNOWN_ID_LEN: usize = 128;

/// Where a refresher reads how many tokens each key verified, fleet-wide
/// (`keyroll::MetricsPage` reads a page over HTTP).
#[async_trait]
pub trait UsageSource: fmt::Debug + Send + Sync + 'static {
    /// The cumulative verifications per key id, summed over every series
    /// of the key (replicas, formats, roles), for the ids in `known` and a
    /// few others ([`verifications_per_key`]). An error says why the
    /// page could not be read; it never contains key material.
    async fn verifications(&self, known: &[String]) -> Result<BTreeMap<String, u64>, String>;
}

/// The sum of every `keyroll_verifications_total` series per `key_id`
/// (over formats and roles) in a page of Prometheus' text format, for the
/// ids in `known` and the first [`MAX_UNKNOWN_IDS`] others (of at most
/// [`MAX_UNKNOWN_ID_LEN`] bytes). Lines that do not parse are skipped;
/// counts saturate.
pub fn verifications_per_key(page: &str, known: &HashSet<&str>) -> BTreeMap<String, u64> {
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
}
