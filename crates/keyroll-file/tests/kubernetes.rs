//! Key files on a Kubernetes secret volume are shared by a fleet: each pod's
//! kubelet swaps its copy's `..data` symlink at a different moment, so a new
//! key must only verify until every pod has it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use keyroll_core::{FromSource, KeyProvider, ProviderErrorKind, Reach, Refresher, Signer};
use keyroll_file::{FileProvider, KUBERNETES_PROPAGATION};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::wait_until;
use time::format_description::well_known::Rfc3339;

const INTERVAL: Duration = Duration::from_millis(100);
const JITTER: Duration = Duration::from_millis(10);
/// How far apart the two pods' kubelets deliver the update.
const SPREAD: Duration = Duration::from_secs(2);

/// A volume as the kubelet lays it out: `..data` -> `..<n>`, `keys` ->
/// `..data/keys`.
struct Volume {
    root: PathBuf,
    updates: usize,
}

impl Volume {
    fn new(root: &Path, contents: &str) -> Self {
        std::fs::create_dir_all(root).unwrap();
        let mut volume = Self {
            root: root.to_path_buf(),
            updates: 0,
        };
        volume.write_copy(contents);
        std::os::unix::fs::symlink("..data/keys", root.join("keys")).unwrap();
        volume
    }

    fn write_copy(&mut self, contents: &str) {
        self.updates += 1;
        let copy = format!("..{}", self.updates);
        std::fs::create_dir(self.root.join(&copy)).unwrap();
        std::fs::write(self.root.join(&copy).join("keys"), contents).unwrap();
        std::os::unix::fs::symlink(&copy, self.root.join("..data_tmp")).unwrap();
        std::fs::rename(self.root.join("..data_tmp"), self.root.join("..data")).unwrap();
    }

    fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at).format(&Rfc3339).unwrap()
}

fn key_file(keys: &[(&str, &str, SystemTime)]) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|(id, key, created)| {
            format!(
                r#"{{"id": "{id}", "key": "{key}", "created": "{}"}}"#,
                rfc3339(*created)
            )
        })
        .collect();
    format!(r#"{{"keys": [{}]}}"#, entries.join(", "))
}

fn provider(uri: &str) -> FileProvider {
    FileProvider::from_uri(uri).unwrap()
}

#[test]
fn a_kubernetes_volume_is_shared_and_waits_for_the_kubelet_before_a_new_key_signs() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(&dir.path().join("pod"), &format!("{}\n", strong_key()));
    let plain = dir.path().join("plain");
    std::fs::write(&plain, format!("{}\n", strong_key())).unwrap();

    let on_volume = FileProvider::new(volume.keys());
    assert_eq!(on_volume.reach(), Reach::Shared);
    assert_eq!(on_volume.propagation_delay(), KUBERNETES_PROPAGATION);
    let delay = Refresher::builder(on_volume)
        .interval(INTERVAL)
        .jitter(JITTER)
        .effective_policy()
        .activation_delay;
    let expected = INTERVAL + JITTER + keyroll_core::CLOCK_SKEW_MARGIN + KUBERNETES_PROPAGATION;
    assert_eq!(delay, Some(expected));
    assert_eq!(FileProvider::new(&plain).reach(), Reach::Local);

    let volume_uri = format!("file://{}", volume.keys().display());
    let local = provider(&format!("{volume_uri}?reach=local"));
    assert_eq!(local.reach(), Reach::Local);
    assert_eq!(
        provider(&local.source()).reach(),
        Reach::Local,
        "{}",
        local.source()
    );
    let shared = provider(&format!("file://{}?reach=shared", plain.display()));
    assert_eq!(shared.reach(), Reach::Shared);
    assert_eq!(shared.propagation_delay(), Duration::ZERO);
    assert!(shared.source().ends_with("?reach=shared"), "{}", shared.source());
    let error = FileProvider::from_uri(&format!("{volume_uri}?reach=fleet")).unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Config);
    assert!(error.to_string().contains("reach=shared"), "{error}");
}

struct Fleet {
    replicas: Vec<Refresher>,
    signed: Arc<AtomicUsize>,
    rejected: Arc<AtomicUsize>,
    traffic: tokio::task::JoinHandle<()>,
}

/// Two pods, each with its own refresher on its own copy of the volume, and
/// a client that signs on one and verifies on the other, in turn.
async fn fleet(volumes: &[&Volume], reach: &str) -> Fleet {
    let mut replicas = Vec::new();
    for volume in volumes {
        let provider = provider(&format!("file://{}{reach}", volume.keys().display()));
        replicas.push(
            Refresher::builder(provider)
                .interval(INTERVAL)
                .jitter(JITTER)
                .start()
                .await
                .unwrap(),
        );
    }
    let signers: Vec<Signer> = replicas
        .iter()
        .map(|r| Signer::new(r.keyring().clone()))
        .collect();
    let (signed, rejected): (Arc<AtomicUsize>, Arc<AtomicUsize>) = (Arc::default(), Arc::default());
    let traffic = tokio::spawn({
        let (signed, rejected) = (Arc::clone(&signed), Arc::clone(&rejected));
        async move {
            for round in 0usize.. {
                let (from, to) = (&signers[round % 2], &signers[(round + 1) % 2]);
                let token = from.sign("session").unwrap();
                signed.fetch_add(1, Ordering::Relaxed);
                if to.verify(&token).is_err() {
                    rejected.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    Fleet {
        replicas,
        signed,
        rejected,
        traffic,
    }
}

fn signs_with(refresher: &Refresher, id: &str) -> bool {
    refresher.keyring().load().signing_key().id() == id
}

/// Publishes `contents` to the first pod's volume, and `SPREAD` later to the
/// second's, then waits until `id` signs on both; returns (signed, rejected).
async fn roll_out(fleet: Fleet, volumes: &mut [Volume; 2], contents: &str, id: &str) -> (usize, usize) {
    volumes[0].write_copy(contents);
    tokio::time::sleep(SPREAD).await; // the second kubelet's delay, the scenario itself
    volumes[1].write_copy(contents);
    wait_until("the new key signs on both pods", || {
        fleet.replicas.iter().all(|r| signs_with(r, id))
    })
    .await;
    fleet.traffic.abort();
    (
        fleet.signed.load(Ordering::Relaxed),
        fleet.rejected.load(Ordering::Relaxed),
    )
}

/// Two pods' volumes holding the old key, published a day ago; returns the
/// directory holding them, (old key, new key, the old key's creation time)
/// and the volumes.
fn before_roll_out() -> (tempfile::TempDir, (String, String, SystemTime), [Volume; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (strong_key(), strong_key());
    let long_ago = SystemTime::now() - Duration::from_secs(86_400);
    let contents = key_file(&[("old", &old, long_ago)]);
    let volumes = [
        Volume::new(&dir.path().join("pod-1"), &contents),
        Volume::new(&dir.path().join("pod-2"), &contents),
    ];
    (dir, (old, new, long_ago), volumes)
}

#[tokio::test]
async fn two_pods_whose_volumes_update_two_seconds_apart_reject_no_token() {
    let (_dir, (old, new, long_ago), mut volumes) = before_roll_out();
    let fleet = fleet(&[&volumes[0], &volumes[1]], "").await;
    let delay = Refresher::builder(FileProvider::new(volumes[0].keys()))
        .interval(INTERVAL)
        .jitter(JITTER)
        .effective_policy()
        .activation_delay
        .unwrap();
    // Time is driven by the store's timestamp: the key was published long
    // enough ago that it may sign 3 s from now, one second after the slower
    // kubelet delivers it, instead of waiting the full default delay.
    let created = SystemTime::now() - delay + SPREAD + Duration::from_secs(1);
    let contents = key_file(&[("new", &new, created), ("old", &old, long_ago)]);
    let (signed, rejected) = roll_out(fleet, &mut volumes, &contents, "new").await;
    println!("shared volume: {signed} tokens across the roll-out, {rejected} rejected");
    assert!(signed > 100, "only {signed} tokens");
    assert_eq!(rejected, 0);
}

/// The control: the same roll-out read as a local file rejects tokens, so the
/// test above could fail.
#[tokio::test]
async fn the_same_roll_out_read_as_local_files_rejects_tokens() {
    let (_dir, (old, new, long_ago), mut volumes) = before_roll_out();
    let fleet = fleet(&[&volumes[0], &volumes[1]], "?reach=local").await;
    let contents = key_file(&[("new", &new, SystemTime::now()), ("old", &old, long_ago)]);
    let (signed, rejected) = roll_out(fleet, &mut volumes, &contents, "new").await;
    println!("local reach: {signed} tokens across the roll-out, {rejected} rejected");
    assert!(rejected > 0);
}
