//! File change to new key in use: write a new key file beside the old one,
//! rename it over, and time until the refresher (woken by the file
//! provider's watch) has installed a key set that signs with the new key.

use std::time::{Duration, Instant};

use keyroll_core::{KeyMaterial, Refresher};
use keyroll_file::FileProvider;
use keyroll_testkit::conformance::strong_key;

use crate::measure::Percentiles;

/// Results of the file section.
#[derive(Debug, Clone)]
pub struct FileResults {
    /// Rotations timed.
    pub rotations: usize,
    /// Write + rename to new signing key, percentiles.
    pub latency: Percentiles,
    /// Slowest rotation.
    pub max: Duration,
}

fn write_keys(dir: &std::path::Path, path: &std::path::Path, keys: &[String]) {
    let staged = dir.join(".keys.new");
    std::fs::write(&staged, keys.join("\n") + "\n").expect("write the new key file");
    std::fs::rename(&staged, path).expect("rename it over the key file");
}

/// Times `rotations` rotations. The refresher polls only every 30 s (the
/// default), so what is measured is the watch.
pub async fn run(rotations: usize) -> FileResults {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("keys");
    let mut keys = vec![strong_key()];
    write_keys(dir.path(), &path, &keys);
    let refresher = Refresher::builder(FileProvider::new(&path))
        .start()
        .await
        .expect("the refresher starts on the key file");
    let keyring = refresher.keyring().clone();
    let mut changes = keyring.subscribe();
    let mut samples = Vec::with_capacity(rotations);
    for _ in 0..rotations {
        let key = strong_key();
        let fingerprint = KeyMaterial::from(key.as_str()).fingerprint();
        keys.insert(0, key);
        keys.truncate(3);
        changes.borrow_and_update();
        let started = Instant::now();
        write_keys(dir.path(), &path, &keys);
        loop {
            if keyring.load().signing_key().material().fingerprint() == fingerprint {
                break;
            }
            tokio::time::timeout(Duration::from_secs(10), changes.changed())
                .await
                .expect("the new key arrives within 10 s")
                .expect("the keyring lives");
        }
        samples.push(started.elapsed());
        // Separate rotations, as real ones are.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    refresher.shutdown().await;
    let max = samples.iter().copied().max().unwrap_or_default();
    FileResults {
        rotations,
        latency: Percentiles::of(&mut samples),
        max,
    }
}
