//! Test support for keyroll: the conformance suite every provider runs, and
//! harnesses for the real external components the tests use (Python peers,
//! servers), started on free loopback ports and stopped on drop.
//!
//! External components come from the project's test environment (`scripts/test`
//! installs them into `.venv`). When one is missing a test skips with a message,
//! except when the `CI` variable is set: then a missing component is a failure.

pub mod bench;
pub mod conformance;
pub mod endpoints;
pub mod fake;
pub mod faults;
pub mod formats;
pub mod gcp;
pub mod memory;
pub mod moto;
pub mod openbao;
pub mod ports;
mod process;
pub mod python;

use std::time::{Duration, Instant};

/// How long [`wait_until`] waits.
pub const WAIT: Duration = Duration::from_secs(15);

/// Polls `done` every 10 ms until it holds.
///
/// # Panics
/// When it does not hold within `patience`; the message says `what` was awaited.
pub async fn wait_until_within(patience: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < patience,
            "timed out after {patience:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`wait_until_within`] [`WAIT`].
///
/// # Panics
/// When `done` does not hold within [`WAIT`].
pub async fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_until_within(WAIT, what, done).await;
}

/// Installs `ring` as the process's default rustls crypto provider unless one
/// is installed already. Test HTTP clients call it before they are built: in a
/// whole-workspace build reqwest gets rustls without a provider of its own.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The number of fallback keys (verifying, no longer signing) in the key set
/// `refresher` serves now.
pub fn fallback_count(refresher: &keyroll_core::Refresher) -> usize {
    let now = std::time::SystemTime::now();
    refresher
        .keyring()
        .load()
        .verifying_keys_at(now)
        .filter(|(_, role)| *role == keyroll_core::Role::Fallback)
        .count()
}

pub mod logs;

/// Starts a refresher of a provider from `provider` under a policy keeping
/// `max_fallbacks` (activation delay 0), and returns how many fallbacks the
/// first key set holds: `provider` is called once per value of
/// `max_fallbacks` in `[10, DEFAULT_MAX_FALLBACKS]`, and the counts are
/// returned in that order. A store holding twelve versions must give
/// `[10, 4]`: the policy in use, not the default one, decides.
///
/// # Panics
/// When a refresher does not start.
pub async fn fallbacks_by_policy<P: keyroll_core::KeyProvider>(provider: impl Fn() -> P) -> [usize; 2] {
    let mut counts = [0; 2];
    for (count, max_fallbacks) in counts.iter_mut().zip([10, keyroll_core::DEFAULT_MAX_FALLBACKS]) {
        let refresher = keyroll_core::Refresher::builder(provider())
            .policy(
                keyroll_core::Policy::default()
                    .with_activation_delay(Duration::ZERO)
                    .with_max_fallbacks(max_fallbacks),
            )
            .start()
            .await
            .expect("the refresher starts");
        *count = fallback_count(&refresher);
        refresher.shutdown().await;
    }
    counts
}
