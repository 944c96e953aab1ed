//! Timing helpers: interleaved rounds (so drift of a shared machine hits every
//! case alike) and latency percentiles.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How much measuring to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effort {
    /// Interleaved rounds per case.
    pub rounds: usize,
    /// Calls per case per round.
    pub per_round: usize,
}

impl Effort {
    /// Enough for stable medians on a loaded 2-core machine.
    pub const FULL: Self = Self {
        rounds: 300,
        per_round: 1_000,
    };
    /// A smoke run: checks that everything works, figures are noise.
    pub const QUICK: Self = Self {
        rounds: 5,
        per_round: 50,
    };
}

/// Nanoseconds per call of each case, from interleaved rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Median over rounds.
    pub median: f64,
    /// Fastest round (the least disturbed one).
    pub min: f64,
}

/// One measured case: a name and a call that must return `true` (a verify
/// that succeeded), so the optimizer cannot drop it and a broken case fails.
pub type Case<'a> = (&'a str, Box<dyn FnMut() -> bool + 'a>);

/// Runs every case `per_round` times per round, round after round, cases
/// interleaved within each round, and returns ns per call for each.
///
/// # Panics
/// When a case returns `false`.
pub fn interleaved(cases: &mut [Case<'_>], effort: Effort) -> Vec<Timing> {
    let mut samples = vec![Vec::with_capacity(effort.rounds); cases.len()];
    for _ in 0..effort.rounds {
        for (i, (name, f)) in cases.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..effort.per_round {
                assert!(black_box(f()), "case {name} failed");
            }
            samples[i].push(start.elapsed().as_nanos() as f64 / effort.per_round as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            Timing {
                median: s[s.len() / 2],
                min: s[0],
            }
        })
        .collect()
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> T {
    assert!(!sorted.is_empty(), "no samples");
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p99 and p99.9 of latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Samples taken.
    pub samples: usize,
}

impl Percentiles {
    /// Percentiles of `samples` (sorted here).
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        Self {
            p50: quantile(samples, 0.50),
            p99: quantile(samples, 0.99),
            p999: quantile(samples, 0.999),
            samples: samples.len(),
        }
    }

    /// Percentiles of samples in nanoseconds (sorted here).
    pub fn of_nanos(samples: &mut [u32]) -> Self {
        samples.sort_unstable();
        let at = |q| Duration::from_nanos(u64::from(quantile(samples, q)));
        Self {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            samples: samples.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_takes_the_nearest_rank() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 500);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 0.999), 999);
        assert_eq!(quantile(&v, 1.0), 1000);
        assert_eq!(quantile(&v, 0.0), 1);
    }

    #[test]
    fn percentiles_sort_their_samples_first() {
        let mut v: Vec<Duration> = (1..=1000).rev().map(Duration::from_nanos).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.p50, p.p99, p.p999),
            (
                Duration::from_nanos(500),
                Duration::from_nanos(990),
                Duration::from_nanos(999)
            )
        );
        assert_eq!(p.samples, 1000);
    }

    #[test]
    fn interleaved_times_every_case_and_fails_a_failing_one() {
        let mut cases: Vec<Case<'_>> = vec![
            ("ok", Box::new(|| true)),
            (
                "slow",
                Box::new(|| {
                    std::thread::sleep(Duration::from_micros(20));
                    true
                }),
            ),
        ];
        let t = interleaved(
            &mut cases,
            Effort {
                rounds: 3,
                per_round: 5,
            },
        );
        assert!(t[1].median > t[0].median);
        assert!(t.iter().all(|t| t.min <= t.median));
        let failing = std::panic::catch_unwind(|| {
            let mut cases: Vec<Case<'_>> = vec![("broken", Box::new(|| false))];
            interleaved(&mut cases, Effort::QUICK)
        });
        assert!(failing.is_err());
    }
}
