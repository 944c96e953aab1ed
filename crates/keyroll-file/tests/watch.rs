//! A running refresher picks up file changes through the watch, not the poll.
//!
//! Every refresher here polls only every 30 seconds, so a change applied in
//! well under a second can only have come through the file watch. The tests
//! print the measured latency and assert under five seconds (still far below
//! the poll interval) so a machine loaded by parallel test runs cannot fail
//! them; the target is 100 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use keyroll_core::{Health, Policy, Refresher};
use keyroll_file::FileProvider;
use keyroll_testkit::conformance::{assert_no_material, strong_key};

const POLL: Duration = Duration::from_secs(30);
const LIMIT: Duration = Duration::from_secs(5);

async fn start(path: &Path) -> Refresher {
    Refresher::builder(FileProvider::new(path))
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(POLL)
        .backoff(POLL, POLL)
        .start()
        .await
        .expect("the refresher starts from the key file")
}

fn signing_key(refresher: &Refresher) -> Vec<u8> {
    refresher
        .keyring()
        .load()
        .signing_key()
        .material()
        .expose_secret()
        .to_vec()
}

/// Runs `change` and waits until `key` signs; returns how long that took.
async fn latency_until_signing(
    refresher: &Refresher,
    key: &str,
    what: &str,
    change: impl FnOnce(),
) -> Duration {
    // Let the watcher settle so the change is not mistaken for start-up noise.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    change();
    while signing_key(refresher) != key.as_bytes() {
        assert!(
            started.elapsed() < LIMIT,
            "{what}: the new key did not sign within {LIMIT:?} (poll interval {POLL:?}); status {:?}",
            refresher.status()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let latency = started.elapsed();
    println!("{what}: new key signing after {latency:?}");
    latency
}

#[tokio::test]
async fn atomic_rename_over_the_file_applies_through_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let (old, new) = (strong_key(), strong_key());
    std::fs::write(&path, format!("{old}\n")).unwrap();
    let refresher = start(&path).await;
    latency_until_signing(&refresher, &new, "atomic rename", || {
        let temp = dir.path().join(".keys.tmp");
        std::fs::write(&temp, format!("{new}\n{old}\n")).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    })
    .await;
    let set = refresher.keyring().load();
    assert_eq!(set.keys().len(), 2, "the old key stays as fallback");
    refresher.shutdown().await;
}

#[tokio::test]
async fn in_place_rewrite_applies_through_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let (old, new) = (strong_key(), strong_key());
    std::fs::write(&path, format!("{old}\n")).unwrap();
    let refresher = start(&path).await;
    latency_until_signing(&refresher, &new, "in-place rewrite", || {
        std::fs::write(&path, format!("{new}\n{old}\n")).unwrap();
    })
    .await;
    refresher.shutdown().await;
}

/// The layout kubelet gives a mounted Secret, and the swap it does on update.
#[tokio::test]
async fn kubernetes_data_symlink_swap_applies_through_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (old, new) = (strong_key(), strong_key());
    std::fs::create_dir(root.join("..2026_a")).unwrap();
    std::fs::write(root.join("..2026_a/key"), format!("{old}\n")).unwrap();
    std::os::unix::fs::symlink("..2026_a", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/key", root.join("key")).unwrap();

    let refresher = start(&root.join("key")).await;
    assert_eq!(signing_key(&refresher), old.as_bytes());
    latency_until_signing(&refresher, &new, "kubernetes ..data swap", || {
        std::fs::create_dir(root.join("..2026_b")).unwrap();
        std::fs::write(root.join("..2026_b/key"), format!("{new}\n{old}\n")).unwrap();
        std::os::unix::fs::symlink("..2026_b", root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join("..2026_a")).unwrap();
    })
    .await;
    refresher.shutdown().await;
}

#[tokio::test]
async fn a_half_written_file_keeps_the_last_good_keys_until_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (old, new) = (strong_key(), strong_key());
    let json = |keys: &[&str]| {
        let entries: Vec<String> = keys.iter().map(|k| format!(r#"{{"key": "{k}"}}"#)).collect();
        format!("{{\"keys\": [\n{}\n]}}\n", entries.join(",\n"))
    };
    std::fs::write(&path, json(&[&old])).unwrap();
    let refresher = start(&path).await;
    let generation = refresher.keyring().generation();

    // An editor or a copy caught half-way: the new key is there, the JSON is cut off.
    let full = json(&[&new, &old]);
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let started = Instant::now();
    while refresher.status().health != Health::Degraded {
        assert!(
            started.elapsed() < LIMIT,
            "the broken file must be noticed through the watch"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!("half-written file: degraded after {:?}", started.elapsed());
    let status = refresher.status();
    let reason = status.last_error.clone().expect("a degraded refresher says why");
    assert!(
        reason.contains("line 2"),
        "the reason names the position: {reason}"
    );
    assert_no_material("status", &format!("{status:?}"), &new);
    assert_eq!(
        signing_key(&refresher),
        old.as_bytes(),
        "the last good key keeps signing"
    );
    assert_eq!(
        refresher.keyring().generation(),
        generation,
        "nothing was swapped"
    );

    latency_until_signing(&refresher, &new, "fixed file", || {
        std::fs::write(&path, &full).unwrap()
    })
    .await;
    assert_eq!(refresher.status().health, Health::Healthy);
    refresher.shutdown().await;
}

#[tokio::test]
async fn changes_to_other_files_in_the_directory_swap_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("{}\n", strong_key())).unwrap();
    let refresher = start(&path).await;
    let generation = refresher.keyring().generation();
    std::fs::write(dir.path().join("unrelated.txt"), "noise").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(refresher.keyring().generation(), generation);
    assert_eq!(refresher.status().health, Health::Healthy);
    refresher.shutdown().await;
}
