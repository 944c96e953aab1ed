//! Automatic rotation in the refresher (`rotate_every`) at memory speed:
//! replicas sharing one store with compare-and-set publish one key per
//! period between them, an empty store gets one first key, periods that
//! cannot work are refused at start, a refused write keeps serving and says
//! why, and the winner retires what the policy no longer uses. The real
//! stores are in the facade's `tests/rotation.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyroll_core::metrics_page::UsageSource;
use keyroll_core::{
    Health, KeyState, ProviderErrorKind, RefreshError, Refresher, RefresherBuilder, Signer, async_trait,
};
use keyroll_testkit::memory::MemoryStore;
use keyroll_testkit::{wait_until, wait_until_within};

const FIRST: &str = "rotation-test-first-key-0123456789abcdefghijklmnop";

fn replica(store: &MemoryStore, period: Duration, activation: Duration) -> RefresherBuilder {
    Refresher::builder(store.clone())
        .interval(Duration::from_millis(50))
        .jitter(Duration::from_millis(20))
        .activation_delay(activation)
        .rotate_every(period)
}

/// Consecutive versions (newest first) are at least `period` apart by the
/// store's creation times: never two in one period.
fn assert_one_per_period(store: &MemoryStore, period: Duration) {
    let versions = store.versions();
    for pair in versions.windows(2) {
        let (newer, older) = (pair[0].created.unwrap(), pair[1].created.unwrap());
        let gap = newer.duration_since(older).unwrap_or_default();
        assert!(
            gap >= period,
            "versions {} and {} are {gap:?} apart, less than one period {period:?}",
            pair[0].id,
            pair[1].id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_publish_one_key_per_period_between_them_and_refuse_no_token() {
    let store = MemoryStore::new();
    store.add(FIRST, Duration::ZERO);
    let period = Duration::from_secs(1);
    let mut replicas = Vec::new();
    for _ in 0..8 {
        replicas.push(
            replica(&store, period, Duration::from_millis(400))
                .start()
                .await
                .expect("starts"),
        );
    }
    let signers: Vec<Signer> = replicas
        .iter()
        .map(|r| Signer::new(r.keyring().clone()))
        .collect();
    let started = std::time::Instant::now();
    let (mut signed, mut refused) = (0, Vec::new());
    while started.elapsed() < Duration::from_millis(5_500) {
        for (i, signer) in signers.iter().enumerate() {
            let token = signer.sign("user:42").expect("signs");
            signed += 1;
            if let Err(error) = signers[(i + 1) % signers.len()].verify(&token) {
                refused.push(error.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let statuses: Vec<_> = replicas.iter().map(Refresher::status).collect();
    for replica in &replicas {
        replica.shutdown().await;
    }
    assert!(
        refused.is_empty(),
        "{} of {signed} tokens refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(3)]
    );
    let versions = store.versions();
    let rotations = versions.len() - 1;
    assert!(
        (3..=5).contains(&rotations),
        "5.5 s at one key a second: {rotations} rotations"
    );
    assert_one_per_period(&store, period);
    let published: u64 = statuses
        .iter()
        .map(|s| s.rotation.as_ref().unwrap().published)
        .sum();
    assert_eq!(
        published as usize, rotations,
        "each rotation counted once, by its publisher"
    );
    for status in &statuses {
        let rotation = status.rotation.as_ref().expect("rotating");
        assert_eq!(rotation.last_error, None);
        assert!(rotation.next_due.is_some());
        assert_eq!(status.health, Health::Healthy);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_gets_exactly_one_first_key_that_every_replica_signs_with() {
    let store = MemoryStore::new();
    let starting: Vec<_> = (0..8)
        .map(|_| tokio::spawn(replica(&store, Duration::from_secs(3600), Duration::from_secs(1)).start()))
        .collect();
    let mut replicas = Vec::new();
    for start in starting {
        replicas.push(start.await.unwrap().expect("starts once the first key exists"));
    }
    assert_eq!(store.versions().len(), 1, "exactly one first key");
    let id = store.versions()[0].id.clone();
    for replica in &replicas {
        assert_eq!(replica.keyring().load().signing_key().id(), id);
        replica.shutdown().await;
    }
}

#[tokio::test]
async fn periods_that_cannot_work_and_stores_without_compare_and_set_are_refused_at_start() {
    let store = MemoryStore::new();
    store.add(FIRST, Duration::ZERO);
    let refusal = |builder: RefresherBuilder| async move {
        match builder.start().await {
            Ok(_) => panic!("started"),
            Err(error) => {
                assert!(matches!(error.last, RefreshError::Rotation(_)), "{error}");
                error.to_string()
            }
        }
    };
    let zero = refusal(Refresher::builder(store.clone()).rotate_every(Duration::ZERO)).await;
    assert!(zero.contains("longer than zero"), "{zero}");
    // A shared store's default activation delay is over 30 s: a key every
    // 3 s would be replaced before it ever signed.
    let short = refusal(Refresher::builder(store.clone()).rotate_every(Duration::from_secs(3))).await;
    assert!(short.contains("replaced before it ever signs"), "{short}");
    let no_cas = refusal(
        Refresher::builder(store.clone().without_compare_and_set()).rotate_every(Duration::from_secs(3600)),
    )
    .await;
    assert!(no_cas.contains("no compare-and-set"), "{no_cas}");
    assert_eq!(store.versions().len(), 1, "nothing was written");
}

/// The last rotation error in `refresher`'s status.
fn rotation_error(refresher: &Refresher) -> Option<String> {
    refresher
        .status()
        .rotation
        .and_then(|rotation| rotation.last_error)
}

#[tokio::test]
async fn a_store_that_refuses_the_write_keeps_serving_and_the_status_says_why() {
    let store = MemoryStore::new();
    store.add(FIRST, Duration::from_secs(10));
    store.refuse_writes(Some(ProviderErrorKind::PermissionDenied));
    let refresher = replica(&store, Duration::from_secs(1), Duration::ZERO)
        .start()
        .await
        .expect("starts");
    let error = || rotation_error(&refresher);
    wait_until("the status reports the refused write", || error().is_some()).await;
    assert!(error().unwrap().contains("writes are refused"), "{:?}", error());
    assert_eq!(refresher.status().health, Health::Healthy, "the keys still serve");
    let signer = Signer::new(refresher.keyring().clone());
    signer.verify(&signer.sign("x").unwrap()).expect("serving");

    store.refuse_writes(None);
    wait_until_within(
        Duration::from_secs(10),
        "a rotation once writes are allowed",
        || store.versions().len() == 2,
    )
    .await;
    wait_until("the error clears", || error().is_none()).await;
    refresher.shutdown().await;
}

#[tokio::test]
async fn a_store_without_creation_times_says_so_in_the_status() {
    let store = MemoryStore::new();
    store.add(FIRST, Duration::ZERO);
    store.forget_times();
    let refresher = replica(&store, Duration::from_secs(1), Duration::ZERO)
        .start()
        .await
        .expect("starts");
    let error = || rotation_error(&refresher);
    wait_until("the status says why", || error().is_some()).await;
    assert!(
        error().is_some_and(|e| e.contains("no creation time")),
        "{:?}",
        error()
    );
    refresher.shutdown().await;
    assert_eq!(store.versions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_disables_what_the_policy_retired_once() {
    let store = store_of_three();
    let replicas: Vec<_> = {
        let mut started = Vec::new();
        for _ in 0..4 {
            started.push(
                replica(&store, Duration::from_secs(10), Duration::ZERO)
                    .max_fallbacks(1)
                    .start()
                    .await
                    .expect("starts"),
            );
        }
        started
    };
    wait_until("one rotation", || store.versions().len() == 4).await;
    wait_until("the retired versions are disabled", || {
        store.disabled().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses: Vec<_> = replicas.iter().map(Refresher::status).collect();
    for replica in &replicas {
        replica.shutdown().await;
    }
    // The new key signs (no activation delay); the one before is the one
    // fallback; the two before that are retired and disabled, once each,
    // though the store lists only the versions the policy uses.
    let disabled = store.disabled();
    assert_eq!(disabled, ["2", "1"], "disabled once each, by the publisher");
    for version in store.versions() {
        let expected = if disabled.contains(&version.id) {
            KeyState::Disabled
        } else {
            KeyState::Enabled
        };
        assert_eq!(version.state, expected, "{}", version.id);
    }
    let retired: u64 = statuses
        .iter()
        .map(|s| s.rotation.as_ref().unwrap().retired)
        .sum();
    assert_eq!(retired, 2);
}

/// A usage page whose counts the test sets: key id to its count now.
#[derive(Debug, Clone, Default)]
struct Page {
    counts: Arc<Mutex<Option<BTreeMap<String, u64>>>>,
}

impl Page {
    fn set(&self, counts: &[(&str, u64)]) {
        let counts = counts.iter().map(|(id, n)| ((*id).to_owned(), *n)).collect();
        *self.counts.lock().unwrap() = Some(counts);
    }

    fn fail(&self) {
        *self.counts.lock().unwrap() = None;
    }
}

#[async_trait]
impl UsageSource for Page {
    async fn verifications(&self, _known: &[String]) -> Result<BTreeMap<String, u64>, String> {
        // Each read of the page sees key 2 verify tokens since the last.
        self.counts
            .lock()
            .unwrap()
            .as_mut()
            .map(|counts| {
                if let Some(count) = counts.get_mut("2") {
                    *count += 3;
                }
                counts.clone()
            })
            .ok_or_else(|| "the page answered 503".to_owned())
    }
}

/// A store of three keys (1 oldest), each older than the period, that
/// retires two of them at the next rotation (one fallback kept).
fn store_of_three() -> MemoryStore {
    let store = MemoryStore::new();
    for (i, age) in [40, 30, 20].into_iter().enumerate() {
        store.add(&format!("{FIRST}-{i}"), Duration::from_secs(age));
    }
    store
}

/// One rotation over [`store_of_three`] by a replica reading `page` over
/// `window`, once its retirement kept `kept` versions: the store and what
/// was kept, with why.
async fn one_retirement(page: Page, window: Duration, kept: usize) -> (MemoryStore, Vec<(String, String)>) {
    let store = store_of_three();
    let refresher = replica(&store, Duration::from_secs(10), Duration::ZERO)
        .max_fallbacks(1)
        .retire_unless_used(page, window)
        .start()
        .await
        .expect("starts");
    wait_until("one rotation", || store.versions().len() == 4).await;
    let held = || refresher.status().rotation.unwrap().kept;
    wait_until("the retirement", || held().len() == kept).await;
    let held = held();
    refresher.shutdown().await;
    (store, held)
}

#[tokio::test]
async fn a_key_the_usage_page_shows_in_use_is_kept_enabled_and_the_status_says_why() {
    let page = Page::default();
    page.set(&[("1", 7), ("2", 40)]);
    let (store, kept) = one_retirement(page, Duration::from_millis(1), 1).await;
    // Key 1 verified nothing between two readings: disabled. Key 2 verified
    // tokens: kept, with why.
    assert_eq!(store.disabled(), ["1"]);
    assert_eq!(kept[0].0, "2");
    assert!(kept[0].1.contains("shows 3 verification(s)"), "{kept:?}");
}

#[tokio::test]
async fn an_unreadable_usage_page_keeps_every_retired_key_enabled() {
    let page = Page::default();
    page.fail();
    let (store, kept) = one_retirement(page, Duration::from_millis(1), 2).await;
    assert!(store.disabled().is_empty());
    let unread = |(_, why): &(String, String)| why.contains("could not be read: the page answered 503");
    assert!(kept.iter().all(unread), "{kept:?}");
}

#[tokio::test]
async fn a_usage_page_read_over_less_than_its_window_keeps_the_key() {
    let page = Page::default();
    page.set(&[("1", 7)]);
    let (store, kept) = one_retirement(page, Duration::from_secs(3600), 2).await;
    assert!(
        store.disabled().is_empty(),
        "an hour's window, read over an instant"
    );
    let short = |(id, why): &(String, String)| id == "1" && why.contains("too short to tell");
    assert!(kept.iter().any(short), "{kept:?}");
}
