//! Verification on every core: throughput of native verify with one shared
//! key ring against the raw HMAC at each thread count, and a contention test
//! that would expose a write to memory shared between threads.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyroll_core::{KeySet, Keyring};

use crate::measure::Effort;
use crate::native::{Raw, key_set, signer};

/// Throughput of both at one thread count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    /// Threads running at once.
    pub threads: usize,
    /// Raw HMAC verifies per second, all threads together (median trial).
    pub raw: f64,
    /// Native `verify_encoded` per second, all threads together (median trial).
    pub native: f64,
}

impl Scaling {
    /// Native's speed-up from one thread to this count, relative to raw's:
    /// 1.0 means native scales exactly as the raw HMAC does.
    pub fn relative_scaling(&self, one: &Scaling) -> f64 {
        (self.native / one.native) / (self.raw / one.raw)
    }
}

/// Counters hammered by every thread at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contention {
    /// Threads hammering.
    pub threads: usize,
    /// ns per increment, one thread alone on one `AtomicU64` (`fetch_add`).
    pub shared_alone: f64,
    /// ns per increment per thread, all threads on one `AtomicU64` (`fetch_add`).
    pub shared: f64,
    /// ns per increment per thread, all threads on one key's counter
    /// (`KeyEntry::record_verification`, per-thread slots).
    pub sharded: f64,
    /// ns per increment, one thread alone on the key's counter.
    pub sharded_alone: f64,
}

/// Everything this section measured.
#[derive(Debug, Clone)]
pub struct CoreResults {
    /// Per thread count, 1 up to the machine's cores.
    pub scaling: Vec<Scaling>,
    /// Trials per case and thread count, and each trial's length.
    pub trials: usize,
    /// Length of one trial.
    pub trial: Duration,
    /// The contention test.
    pub contention: Contention,
}

/// Runs `call` on `threads` threads at once for `length`; calls per second.
fn throughput(threads: usize, length: Duration, call: &(dyn Fn() -> bool + Sync)) -> f64 {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let total = AtomicU64::new(0);
    let elapsed = std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                start.wait();
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        assert!(black_box(call()), "a measured call failed");
                    }
                    calls += 64;
                }
                total.fetch_add(calls, Ordering::Relaxed);
            });
        }
        start.wait();
        let began = Instant::now();
        std::thread::sleep(length);
        stop.store(true, Ordering::Relaxed);
        began.elapsed()
    });
    total.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Measures 1..=`cores` threads, raw and native interleaved trial by trial.
pub fn run(effort: Effort, cores: usize) -> CoreResults {
    let (trials, trial) = if effort == Effort::QUICK {
        (3, Duration::from_millis(5))
    } else {
        (31, Duration::from_millis(40))
    };
    let token = crate::native::token_of(0);
    let raw = Raw::new(&token);
    // One key ring, one current key, shared by every thread: a real service.
    let native = signer(1);
    let raw_call = || raw.verify();
    let native_call = || native.verify_encoded(&token).is_ok();
    let counts: Vec<usize> = (1..=cores.max(1)).collect();
    let mut samples = vec![(Vec::new(), Vec::new()); counts.len()];
    for _ in 0..trials {
        for (i, &n) in counts.iter().enumerate() {
            samples[i].0.push(throughput(n, trial, &raw_call));
            samples[i].1.push(throughput(n, trial, &native_call));
        }
    }
    let scaling = counts
        .iter()
        .zip(samples)
        .map(|(&threads, (raw, native))| Scaling {
            threads,
            raw: median(raw),
            native: median(native),
        })
        .collect();
    CoreResults {
        scaling,
        trials,
        trial,
        contention: contention(effort, cores.max(2)),
    }
}

/// ns per increment per thread, `threads` threads each doing `per_thread`.
fn hammer(threads: usize, per_thread: u64, increment: &(dyn Fn() + Sync)) -> f64 {
    let start = Barrier::new(threads);
    let times: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..per_thread {
                        increment();
                    }
                    began.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let slowest = times.into_iter().max().unwrap_or_default();
    slowest.as_nanos() as f64 / per_thread as f64
}

/// One `AtomicU64` written by every thread against the per-thread slots of a
/// key's counter, medians of interleaved trials.
fn contention(effort: Effort, threads: usize) -> Contention {
    let (trials, per_thread) = if effort == Effort::QUICK {
        (3, 100_000)
    } else {
        (15, 2_000_000)
    };
    let shared = AtomicU64::new(0);
    let keys: KeySet = key_set(1);
    let keyring = Keyring::new(keys);
    let set = keyring.key_set();
    let key = &set.keys()[0];
    let before = key.verifications();
    let shared_inc = || {
        shared.fetch_add(1, Ordering::Relaxed);
    };
    let sharded_inc = || key.record_verification(keyroll_core::Format::Native, keyroll_core::Role::Current);
    let mut s = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..trials {
        s[0].push(hammer(1, per_thread, &shared_inc));
        s[1].push(hammer(threads, per_thread, &shared_inc));
        s[2].push(hammer(threads, per_thread, &sharded_inc));
        s[3].push(hammer(1, per_thread, &sharded_inc));
    }
    let counted = key.verifications() - before;
    assert_eq!(
        counted,
        trials as u64 * per_thread * (threads as u64 + 1),
        "the per-thread counter lost increments"
    );
    let [a, b, c, d] = s;
    Contention {
        threads,
        shared_alone: median(a),
        shared: median(b),
        sharded: median(c),
        sharded_alone: median(d),
    }
}
