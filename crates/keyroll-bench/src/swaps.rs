//! Verify latency while another thread swaps whole key sets in 1,000 times a
//! second, against idle, in alternating phases of one run.
//!
//! Every swap is a new keyring generation, so the first verify after it
//! rebuilds the signer's derived per-salt keys: that is the cost a swap adds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyroll_core::{Keyring, Signer};

use crate::measure::Percentiles;
use crate::native::{key_set, token_of};

/// Keys in the swapped sets.
pub const KEYS: usize = 4;
/// Swaps per second asked for.
pub const RATE: u32 = 1_000;

/// Results of the swap section.
#[derive(Debug, Clone)]
pub struct SwapResults {
    /// Verify latency with no other thread running.
    pub idle: Percentiles,
    /// Verify latency while key sets are swapped in.
    pub swapping: Percentiles,
    /// Swaps per second achieved during the swapping phases.
    pub achieved_rate: f64,
    /// Cost of one `Instant::now()` pair, included in every sample.
    pub timer_overhead: Duration,
}

/// Alternates `phases` idle and swapping phases of `phase` each.
pub fn run(phases: usize, phase: Duration) -> SwapResults {
    let keyring = Keyring::new(key_set(KEYS));
    let signer = Signer::new(keyring.clone()).with_salt("sessions");
    let token = token_of(0);
    assert!(signer.verify_encoded(&token).is_ok());

    let swapping = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (keyring, swapping, stop, swaps) =
            (keyring.clone(), swapping.clone(), stop.clone(), swaps.clone());
        std::thread::spawn(move || {
            let period = Duration::from_secs(1) / RATE;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if !swapping.load(Ordering::Acquire) {
                    std::thread::park_timeout(Duration::from_millis(50));
                    next = Instant::now();
                    continue;
                }
                // A refresher builds the new set completely, then swaps it in.
                keyring.install(key_set(KEYS));
                swaps.fetch_add(1, Ordering::Relaxed);
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        })
    };

    let timer_overhead = {
        let start = Instant::now();
        for _ in 0..100_000 {
            std::hint::black_box(Instant::now());
        }
        start.elapsed() / 100_000
    };
    let mut idle: Vec<u32> = Vec::with_capacity(phases * 1_000_000);
    let mut busy: Vec<u32> = Vec::with_capacity(phases * 1_000_000);
    let mut swapping_time = Duration::ZERO;
    let swaps_before = swaps.load(Ordering::Relaxed);
    for _ in 0..phases {
        for swap in [false, true] {
            swapping.store(swap, Ordering::Release);
            if swap {
                swapper.thread().unpark();
            }
            // Let the swapper reach its pace (or go quiet) before sampling.
            std::thread::sleep(Duration::from_millis(5));
            let samples = if swap { &mut busy } else { &mut idle };
            let started = Instant::now();
            let end = started + phase;
            loop {
                let t0 = Instant::now();
                let ok = signer.verify_encoded(std::hint::black_box(&token)).is_ok();
                let t1 = Instant::now();
                assert!(ok, "verify failed under swaps");
                if samples.len() < samples.capacity() {
                    samples.push((t1 - t0).as_nanos().min(u32::MAX as u128) as u32);
                }
                if t1 >= end {
                    break;
                }
            }
            if swap {
                swapping_time += started.elapsed();
            }
        }
    }
    swapping.store(false, Ordering::Release);
    let achieved = (swaps.load(Ordering::Relaxed) - swaps_before) as f64 / swapping_time.as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    swapper.thread().unpark();
    swapper.join().expect("swapper thread");
    SwapResults {
        idle: Percentiles::of_nanos(&mut idle),
        swapping: Percentiles::of_nanos(&mut busy),
        achieved_rate: achieved,
        timer_overhead,
    }
}
