//! Allocations per call, counted by the binary's global allocator.
//!
//! The counter is process-wide: measure only while no other thread of this
//! process runs (before the async sections start).

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// The counting allocator every allocation of the bench binary goes through.
#[global_allocator]
pub static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations (and bytes) per call of `f`, over `calls` calls after one
/// warm-up call.
pub fn per_call(calls: usize, mut f: impl FnMut() -> bool) -> (f64, f64) {
    assert!(f(), "the measured call fails");
    let region = Region::new(GLOBAL);
    for _ in 0..calls {
        assert!(std::hint::black_box(f()));
    }
    let change = region.change();
    (
        change.allocations as f64 / calls as f64,
        change.bytes_allocated as f64 / calls as f64,
    )
}

/// One measured allocation count.
#[derive(Debug, Clone)]
pub struct AllocRow {
    /// What was called.
    pub what: String,
    /// Allocations per call.
    pub allocations: f64,
    /// Bytes allocated per call.
    pub bytes: f64,
}

/// Allocation counts of the native hot paths and of a Fernet decrypt.
pub fn run() -> Vec<AllocRow> {
    use crate::native::{VALUE, signer, token_of};
    let one = signer(1);
    let sixty_four = signer(64);
    let newest = token_of(0);
    let oldest = token_of(63);
    let mut rows = Vec::new();
    let mut row = |what: &str, (allocations, bytes): (f64, f64)| {
        rows.push(AllocRow {
            what: what.to_owned(),
            allocations,
            bytes,
        })
    };
    row(
        "`Signer::verify_encoded`, 1 key",
        per_call(10_000, || one.verify_encoded(&newest).is_ok()),
    );
    row(
        "`Signer::verify_encoded`, 64 keys, oldest",
        per_call(10_000, || sixty_four.verify_encoded(&oldest).is_ok()),
    );
    row(
        "`Signer::verify` (decodes to `String`), 1 key",
        per_call(10_000, || one.verify(&newest).is_ok()),
    );
    row(
        "`Signer::sign`, 1 key",
        per_call(10_000, || !one.sign(VALUE).unwrap().is_empty()),
    );
    let (encrypter, token) = crate::fernet::one_key();
    row(
        "Fernet `Encrypter::decrypt`, 1 key",
        per_call(10_000, || encrypter.decrypt(&token, None).is_ok()),
    );
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_allocations_of_a_call() {
        let (allocations, bytes) = per_call(100, || std::hint::black_box(vec![1u8; 100]).len() == 100);
        // Other tests allocate meanwhile: the count is at least the call's own.
        assert!(allocations >= 1.0, "{allocations}");
        assert!(bytes >= 100.0, "{bytes}");
    }
}
