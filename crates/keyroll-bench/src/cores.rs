//! Verification on every core: throughput of native verify with one shared
//! key ring against the raw HMAC at each thread count, and a contention test
//! that would expose a write to memory shared between threads.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keyroll_core::{KeySet, Keyring};
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

use crate::measure::Effort;
use crate::native::{Raw, key_set, signer};

/// Throughput of each case at one thread count, all threads together, in
/// calls per second (median trial).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    /// Threads running at once.
    pub threads: usize,
    /// Raw HMAC verifies per second.
    pub raw: f64,
    /// Native `verify_encoded` per second.
    pub native: f64,
    /// The control: native `verify_encoded` followed by one `fetch_add` on
    /// one `AtomicU64` that every thread writes (on lines of its own), per
    /// second: what a per-key counter shared by all threads would cost, as
    /// the same measurement sees it.
    pub shared_write: f64,
}

impl Scaling {
    /// Native's speed-up from one thread to this count, relative to raw's:
    /// 1.0 means native scales exactly as the raw HMAC does.
    pub fn relative_scaling(&self, one: &Scaling) -> f64 {
        (self.native / one.native) / (self.raw / one.raw)
    }

    /// The same for the control with one shared write per verify.
    pub fn control_scaling(&self, one: &Scaling) -> f64 {
        (self.shared_write / one.shared_write) / (self.raw / one.raw)
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

/// Runs `work` on `threads` threads at once and returns what each returned.
///
/// Thread `i` is pinned to the `i`-th CPU this process may use: left to the
/// scheduler, two new threads often shared one CPU for milliseconds before
/// the idle one took one of them over, and a 10 ms trial then measured one
/// core's throughput at "two threads". The threads meet at a barrier
/// (asleep, while the others are spawned), then spin until every one is
/// running, and only then call `work`: waking a thread whose CPU is idle can
/// take milliseconds (an idle virtual CPU has to be scheduled again by the
/// host), and a thread that started late would let the others run alone.
fn together<R: Send>(threads: usize, work: &(dyn Fn() -> R + Sync)) -> Vec<R> {
    let cpus = allowed_cpus();
    let barrier = Barrier::new(threads);
    let running = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (cpus, barrier, running) = (&cpus, &barrier, &running);
                scope.spawn(move || {
                    if let Some(&cpu) = cpus.get(i % cpus.len().max(1)) {
                        let mut set = CpuSet::new();
                        set.set(cpu);
                        // Unpinned, the figures are only noisier.
                        let _ = sched_setaffinity(None, &set);
                    }
                    barrier.wait();
                    running.fetch_add(1, Ordering::SeqCst);
                    while running.load(Ordering::SeqCst) < threads {
                        std::hint::spin_loop();
                    }
                    work()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a measuring thread"))
            .collect()
    })
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    sched_getaffinity(None)
        .map(|set| (0..CpuSet::MAX_CPU).filter(|&cpu| set.is_set(cpu)).collect())
        .unwrap_or_default()
}

/// Runs `call` on `threads` threads at once (`together`) for about
/// `length`; calls per second, all threads together.
///
/// Each thread times itself and stops at its own deadline, so the main
/// thread, blocked in `join`, takes no CPU from them. The rate is all calls
/// over the span from the first thread's start to the last one's end, which
/// can only understate it. (Timing from the main thread was wrong by its
/// scheduling luck: it could lose its CPU for milliseconds right after the
/// barrier, before it read the clock, and the raw loop then looked faster
/// per thread at two threads than alone.)
fn throughput(threads: usize, length: Duration, call: &(dyn Fn() -> bool + Sync)) -> f64 {
    let runs = together(threads, &|| {
        let began = Instant::now();
        let mut calls = 0u64;
        loop {
            for _ in 0..64 {
                assert!(black_box(call()), "a measured call failed");
            }
            calls += 64;
            let now = Instant::now();
            if now.duration_since(began) >= length {
                return (calls, began, now);
            }
        }
    });
    let calls: u64 = runs.iter().map(|r| r.0).sum();
    let first = runs.iter().map(|r| r.1).min().expect("at least one thread");
    let last = runs.iter().map(|r| r.2).max().expect("at least one thread");
    calls as f64 / last.duration_since(first).as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A counter on cache lines of its own, so that the control's only shared
/// line is the one it writes.
#[derive(Default)]
#[repr(align(128))]
struct Line(AtomicU64);

/// Measures 1..=`cores` threads, raw, native and the control interleaved
/// trial by trial; the median trial of each counts.
pub fn run(effort: Effort, cores: usize) -> CoreResults {
    let (trials, trial) = if effort == Effort::QUICK {
        (3, Duration::from_millis(5))
    } else {
        (101, Duration::from_millis(10))
    };
    let token = crate::native::token_of(0);
    let raw = Raw::new(&token);
    // One key ring, one current key, shared by every thread: a real service.
    let native = signer(1);
    let shared = Line::default();
    let raw_call = || raw.verify();
    let native_call = || native.verify_encoded(&token).is_ok();
    let control_call = || {
        let ok = native.verify_encoded(&token).is_ok();
        shared.0.fetch_add(1, Ordering::Relaxed);
        ok
    };
    let cases: [&(dyn Fn() -> bool + Sync); 3] = [&raw_call, &native_call, &control_call];
    let counts: Vec<usize> = (1..=cores.max(1)).collect();
    let mut samples = vec![[Vec::new(), Vec::new(), Vec::new()]; counts.len()];
    for _ in 0..trials {
        for (i, &n) in counts.iter().enumerate() {
            for (case, call) in cases.iter().enumerate() {
                samples[i][case].push(throughput(n, trial, *call));
            }
        }
    }
    let scaling = counts
        .iter()
        .zip(samples)
        .map(|(&threads, [raw, native, control])| Scaling {
            threads,
            raw: median(raw),
            native: median(native),
            shared_write: median(control),
        })
        .collect();
    CoreResults {
        scaling,
        trials,
        trial,
        contention: contention(effort, cores.max(2)),
    }
}

/// ns per increment per thread, `threads` threads (`together`) each doing
/// `per_thread`; the slowest thread's time.
fn hammer(threads: usize, per_thread: u64, increment: &(dyn Fn() + Sync)) -> f64 {
    let times = together(threads, &|| {
        let began = Instant::now();
        for _ in 0..per_thread {
            increment();
        }
        began.elapsed()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn together_pins_each_thread_to_a_cpu_of_its_own() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty(), "this process may run somewhere");
        let threads = cpus.len().min(4);
        let pinned = together(threads, &|| {
            let set = sched_getaffinity(None).expect("read the thread's affinity");
            (0..CpuSet::MAX_CPU)
                .filter(|&cpu| set.is_set(cpu))
                .collect::<Vec<_>>()
        });
        let expected: Vec<Vec<usize>> = cpus.iter().take(threads).map(|&cpu| vec![cpu]).collect();
        assert_eq!(pinned, expected);
    }

    #[test]
    fn throughput_counts_every_threads_calls() {
        let calls = AtomicU64::new(0);
        let rate = throughput(2, Duration::from_millis(5), &|| {
            calls.fetch_add(1, Ordering::Relaxed);
            true
        });
        let made = calls.load(Ordering::Relaxed);
        assert!(made > 0 && made.is_multiple_of(64), "whole batches of 64: {made}");
        // All calls over a span of at least the trial's length.
        assert!(
            rate > 0.0 && rate <= made as f64 / 0.005,
            "{rate} for {made} calls"
        );
    }
}
