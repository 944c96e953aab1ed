//! Measuring ratios in one run: cases measured in interleaved rounds, so
//! machine noise (other processes, frequency changes) hits every case alike.

use std::hint::black_box;
use std::time::Instant;

/// Median nanoseconds per call of each case over `rounds` rounds; each
/// round calls every case `per_round` times, one case after the other. Each
/// call must return true (a verify that succeeded), so a broken case cannot
/// look fast.
pub fn interleaved(cases: &mut [&mut dyn FnMut() -> bool], rounds: usize, per_round: u32) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (case, samples) in cases.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..per_round {
                assert!(black_box(case()), "a measured call failed");
            }
            samples.push(start.elapsed().as_nanos() as f64 / f64::from(per_round.max(1)));
        }
    }
    samples
        .into_iter()
        .map(|mut samples| {
            samples.sort_by(f64::total_cmp);
            samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
        })
        .collect()
}
