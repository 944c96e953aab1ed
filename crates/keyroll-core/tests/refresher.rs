//! The refresher: polls, swaps only on change, keeps the last good set on any
//! failure, reports status, follows pushes and activation moments, stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use keyroll_core::{
    ChangeWatch, Health, KeyProvider, KeyState, KeyVersion, Policy, ProviderError, ProviderErrorKind, Reach,
    RefreshError, Refresher, Role, async_trait,
};
use tokio::sync::mpsc;

const A: &str = "refresher-key-A-0123456789abcdefghijklmnop";
const B: &str = "refresher-key-B-0123456789abcdefghijklmnop";

/// What the scripted store answers next: versions, or a failure of a kind.
type Answer = Option<Result<Vec<KeyVersion>, ProviderErrorKind>>;

/// A store whose answer the test sets, counting fetches.
#[derive(Debug, Clone, Default)]
struct Scripted {
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
    push: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    panics: Arc<std::sync::atomic::AtomicBool>,
}

impl Scripted {
    fn holding(keys: &[&str]) -> Self {
        let store = Self::default();
        store.set(keys);
        store
    }
    fn set(&self, keys: &[&str]) {
        self.set_versions(keys.iter().map(|k| KeyVersion::new(&k[..15], *k)).collect());
    }
    fn set_versions(&self, versions: Vec<KeyVersion>) {
        *self.answer.lock().unwrap() = Some(Ok(versions));
    }
    fn fail(&self, kind: ProviderErrorKind) {
        *self.answer.lock().unwrap() = Some(Err(kind));
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyProvider for Scripted {
    async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.panics.load(Ordering::SeqCst) {
            panic!("scripted provider bug");
        }
        match self.answer.lock().unwrap().clone() {
            Some(Ok(versions)) => Ok(versions),
            Some(Err(kind)) => Err(ProviderError::new(kind, "scripted failure")),
            None => Err(ProviderError::not_found("nothing scripted")),
        }
    }
    fn watch(&self) -> Result<Option<ChangeWatch>, ProviderError> {
        Ok(self
            .push
            .lock()
            .unwrap()
            .take()
            .map(|rx| ChangeWatch::new(rx, ())))
    }
    fn reach(&self) -> Reach {
        Reach::Local
    }
    fn source(&self) -> String {
        "scripted://test".into()
    }
}

fn policy() -> Policy {
    Policy::default().with_activation_delay(Duration::ZERO)
}

/// A running refresher of `store` polling every `interval`, without activation delay.
async fn started(store: &Scripted, interval: Duration) -> Refresher {
    Refresher::builder(store.clone())
        .policy(policy())
        .interval(interval)
        .start()
        .await
        .unwrap()
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the refresher's task has ended: it no longer holds the store
/// (the test's handle is the only one left), so nothing can fetch any more.
async fn task_ended(store: &Scripted) {
    eventually("the task released the store", || {
        Arc::strong_count(&store.fetches) == 1
    })
    .await;
}

fn signing_id(refresher: &Refresher) -> String {
    refresher.keyring().load().signing_key().id().to_owned()
}

#[tokio::test]
async fn start_waits_for_the_first_good_key_set() {
    let store = Scripted::default();
    store.fail(ProviderErrorKind::Unavailable);
    let later = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        later.set(&[A]);
    });
    let refresher = Refresher::builder(store.clone())
        .policy(policy())
        .backoff(Duration::from_millis(50), Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    assert_eq!(signing_id(&refresher), &A[..15]);
    assert!(store.fetches() >= 2);
}

#[tokio::test]
async fn start_fails_with_the_reason_after_the_startup_timeout() {
    let store = Scripted::default();
    store.fail(ProviderErrorKind::Unavailable);
    let err = Refresher::builder(store.clone())
        .startup_timeout(Duration::from_millis(300))
        .backoff(Duration::from_millis(50), Duration::from_millis(50))
        .start()
        .await
        .unwrap_err();
    assert!(err.attempts >= 2, "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("scripted://test") && shown.contains("store unavailable"),
        "{shown}"
    );
}

#[tokio::test]
async fn configuration_errors_fail_at_once() {
    let store = Scripted::default();
    store.fail(ProviderErrorKind::Config);
    let err = Refresher::builder(store.clone()).start().await.unwrap_err();
    assert_eq!(err.attempts, 1);
    assert!(matches!(err.last, RefreshError::Provider(ref e) if e.kind() == ProviderErrorKind::Config));
}

#[tokio::test]
async fn a_weak_key_at_start_is_refused() {
    let store = Scripted::default();
    store.set_versions(vec![KeyVersion::new("weak", "short")]);
    let err = Refresher::builder(store)
        .startup_timeout(Duration::from_millis(100))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key weak is weak"), "{err}");
}

#[tokio::test]
async fn a_rotation_is_picked_up_at_the_next_poll() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(50)).await;
    let mut changes = refresher.keyring().subscribe();
    store.set(&[B, A]);
    eventually("new key signs", || signing_id(&refresher) == B[..15]).await;
    assert_eq!(refresher.keyring().generation(), 2);
    changes.changed().await.unwrap();
    assert_eq!(*changes.borrow(), 2);
    let set = refresher.keyring().load();
    assert_eq!(
        set.key(&A[..15]).unwrap().role_at(SystemTime::now()),
        Role::Fallback
    );
}

#[tokio::test]
async fn an_unchanged_store_never_swaps() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    eventually("several polls", || store.fetches() >= 5).await;
    assert_eq!(refresher.keyring().generation(), 1);
}

#[tokio::test]
async fn a_failing_store_keeps_the_last_good_set_and_reports_degraded_until_it_recovers() {
    let store = Scripted::holding(&[A]);
    let refresher = Refresher::builder(store.clone())
        .policy(policy())
        .interval(Duration::from_millis(30))
        .backoff(Duration::from_millis(10), Duration::from_millis(30))
        .start()
        .await
        .unwrap();
    assert_eq!(refresher.status().health, Health::Healthy);

    store.fail(ProviderErrorKind::Unavailable);
    eventually("degraded", || refresher.status().health == Health::Degraded).await;
    let status = refresher.status();
    assert_eq!(signing_id(&refresher), &A[..15], "last good set keeps serving");
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap()
            .contains("store unavailable")
    );
    eventually("failures accumulate", || {
        refresher.status().consecutive_failures >= 2
    })
    .await;
    assert!(refresher.status().staleness() > Duration::ZERO);

    store.set(&[B, A]);
    eventually("recovered", || refresher.status().health == Health::Healthy).await;
    assert_eq!(signing_id(&refresher), &B[..15]);
    assert_eq!(refresher.status().consecutive_failures, 0);
    assert!(refresher.status().last_error.is_none());
}

#[tokio::test]
async fn a_weak_or_empty_result_is_never_swapped_in() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    store.set_versions(vec![KeyVersion::new("weak", "short")]);
    eventually("weak key refused", || {
        refresher.status().health == Health::Degraded
    })
    .await;
    assert!(refresher.status().last_error.unwrap().contains("weak"));
    store.set_versions(vec![]);
    eventually("empty set refused", || {
        refresher
            .status()
            .last_error
            .is_some_and(|e| e.contains("no usable key"))
    })
    .await;
    assert_eq!(signing_id(&refresher), &A[..15]);
    assert_eq!(refresher.keyring().generation(), 1);
}

/// Issue 24 item 13: a weak key from a store without ids (a plain key file,
/// an environment variable) has its fingerprint for id, an unsalted hash of
/// the short key: `last_error` names it by position, never by fingerprint.
#[tokio::test]
async fn a_weak_key_published_at_run_time_is_not_named_by_its_fingerprint() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    let weak = KeyVersion::from_material("13-byte-key!!");
    let fingerprint = weak.id.clone();
    store.set_versions(vec![weak, KeyVersion::new(&A[..15], A)]);
    eventually("weak key refused", || {
        refresher.status().health == Health::Degraded
    })
    .await;
    let error = refresher.status().last_error.unwrap();
    assert!(
        error.contains("key #1 (counting from the newest) is weak: 13 bytes long"),
        "{error}"
    );
    assert!(!error.contains(&fingerprint), "{error}");
    assert!(!error.contains("13-byte-key"), "{error}");
}

#[tokio::test]
async fn a_push_notification_refreshes_at_once() {
    let store = Scripted::holding(&[A]);
    let (tx, rx) = mpsc::channel(4);
    *store.push.lock().unwrap() = Some(rx);
    let refresher = started(&store, Duration::from_secs(3600)).await;
    store.set(&[B, A]);
    let pushed = tokio::time::Instant::now();
    tx.send(()).await.unwrap();
    tx.send(()).await.unwrap();
    eventually("pushed change applied", || signing_id(&refresher) == B[..15]).await;
    assert!(
        pushed.elapsed() < Duration::from_millis(500),
        "{:?}",
        pushed.elapsed()
    );
}

#[tokio::test]
async fn refresh_now_does_not_wait_for_the_interval() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_secs(3600)).await;
    store.set(&[B, A]);
    refresher.refresh_now();
    eventually("refreshed", || signing_id(&refresher) == B[..15]).await;
}

#[tokio::test]
async fn a_pending_key_starts_signing_at_its_activation_moment_without_a_fetch() {
    let now = SystemTime::now();
    let store = Scripted::default();
    store.set_versions(vec![
        KeyVersion::new("b", B).with_created(now),
        KeyVersion::new("a", A).with_created(now - Duration::from_secs(3600)),
    ]);
    let refresher = Refresher::builder(store.clone())
        .policy(Policy::default().with_activation_delay(Duration::from_millis(300)))
        .interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    assert_eq!(signing_id(&refresher), "a");
    let fetches = store.fetches();
    eventually("b signs", || refresher.keyring().generation() == 2).await;
    assert_eq!(signing_id(&refresher), "b");
    assert_eq!(store.fetches(), fetches, "the switch needs no store call");
}

#[tokio::test]
async fn shutdown_stops_polling() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(10)).await;
    eventually("polling", || store.fetches() >= 3).await;
    refresher.shutdown().await;
    let stopped_at = store.fetches();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.fetches(), stopped_at);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_polling() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(10)).await;
    let keyring = refresher.keyring().clone();
    drop(refresher);
    task_ended(&store).await;
    let stopped_at = store.fetches();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.fetches(), stopped_at);
    assert_eq!(
        keyring.load().signing_key().id(),
        &A[..15],
        "the keyring outlives its refresher"
    );
}

#[tokio::test]
async fn shared_stores_get_staged_activation_by_default() {
    #[derive(Debug)]
    struct Shared(Scripted);
    #[async_trait]
    impl KeyProvider for Shared {
        async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
            self.0.fetch().await
        }
        fn reach(&self) -> keyroll_core::Reach {
            keyroll_core::Reach::Shared
        }
    }
    let builder = Refresher::builder(Shared(Scripted::holding(&[A]))).interval(Duration::from_secs(30));
    assert_eq!(
        builder.effective_policy().activation_delay,
        Some(Duration::from_secs(30 + 3) + keyroll_core::CLOCK_SKEW_MARGIN)
    );
    let local = Refresher::builder(Scripted::holding(&[A]));
    assert_eq!(local.effective_policy().activation_delay, Some(Duration::ZERO));
}

#[tokio::test]
async fn activation_moments_never_postpone_the_next_poll() {
    // A pending key activates every 20 ms; the store must still be polled
    // every 100 ms, or replicas would miss new keys while roles change.
    let now = SystemTime::now();
    let store = Scripted::default();
    let mut versions: Vec<KeyVersion> = (1..=150u64)
        .rev()
        .map(|i| {
            KeyVersion::new(format!("v{i}"), format!("{B}-{i}"))
                .with_activates(now + Duration::from_millis(20 * i))
        })
        .collect();
    versions.push(KeyVersion::new("a", A));
    let last_activation = now + Duration::from_millis(20 * 150);
    store.set_versions(versions);
    let refresher = started(&store, Duration::from_millis(100)).await;
    // Waits for conditions, not for a time: with postponed polls the fetch
    // count would stay at 1 until the activations end, 3 s from now.
    eventually("the refresher follows the activations", || {
        refresher.keyring().generation() >= 5
    })
    .await;
    eventually("polls go on meanwhile", || store.fetches() >= 4).await;
    assert!(
        SystemTime::now() < last_activation,
        "polled only after the activations ended"
    );
}

#[tokio::test]
async fn re_evaluations_do_not_count_as_contact_with_the_store() {
    let now = SystemTime::now();
    let store = Scripted::default();
    store.set_versions(vec![
        KeyVersion::new("b", B).with_activates(now + Duration::from_millis(200)),
        KeyVersion::new("a", A),
    ]);
    let refresher = started(&store, Duration::from_secs(3600)).await;
    let confirmed = refresher.status().last_success;
    eventually("b signs", || signing_id(&refresher) == "b").await;
    assert_eq!(
        refresher.status().last_success,
        confirmed,
        "staleness counts from the last fetch"
    );
}

#[tokio::test]
async fn past_the_stale_limit_every_verification_is_refused_until_the_store_answers() {
    let store = Scripted::holding(&[A]);
    let refresher = Refresher::builder(store.clone())
        .policy(policy())
        .interval(Duration::from_millis(30))
        .backoff(Duration::from_millis(10), Duration::from_millis(30))
        .fail_closed_after(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let signer = keyroll_core::Signer::new(refresher.keyring().clone());
    let token = signer.sign("session").unwrap();

    store.fail(ProviderErrorKind::Unavailable);
    eventually("degraded", || refresher.status().health == Health::Degraded).await;
    assert!(
        signer.verify(&token).is_ok(),
        "within the limit the last good keys serve"
    );
    eventually("failed closed", || refresher.keyring().is_closed()).await;
    assert_eq!(refresher.status().health, Health::Stale);
    assert!(refresher.status().staleness() >= Duration::from_millis(300));
    assert_eq!(signer.verify(&token), Err(keyroll_core::VerifyError::Stale));
    assert_eq!(
        signer.sign("while closed"),
        Err(keyroll_core::Closed::FailedClosed),
        "nothing signs once failed closed"
    );

    store.set(&[A]);
    eventually("reopened", || !refresher.keyring().is_closed()).await;
    assert_eq!(refresher.status().health, Health::Healthy);
    assert_eq!(signer.verify(&token).unwrap().value, "session");
}

#[tokio::test]
async fn without_a_stale_limit_the_last_good_keys_keep_serving() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    let signer = keyroll_core::Signer::new(refresher.keyring().clone());
    let token = signer.sign("session").unwrap();
    store.fail(ProviderErrorKind::Unavailable);
    // Well past where a limit of a few polls would have closed it.
    eventually("many failed polls", || {
        refresher.status().consecutive_failures >= 10
    })
    .await;
    assert_eq!(refresher.status().health, Health::Degraded);
    assert!(!refresher.keyring().is_closed());
    assert!(signer.verify(&token).is_ok());
}

#[tokio::test]
async fn start_degraded_serves_the_break_glass_keys_until_the_store_answers() {
    let store = Scripted::default();
    store.fail(ProviderErrorKind::Unavailable);
    let break_glass =
        keyroll_core::KeySet::single("break-glass", keyroll_core::KeyMaterial::from(B)).unwrap();
    let refresher = Refresher::builder(store.clone())
        .policy(policy())
        .interval(Duration::from_millis(30))
        .backoff(Duration::from_millis(10), Duration::from_millis(30))
        .startup_timeout(Duration::from_millis(100))
        .start_degraded(break_glass)
        .start()
        .await
        .unwrap();
    let status = refresher.status();
    assert_eq!(status.health, Health::Degraded);
    assert!(status.last_error.unwrap().contains("store unavailable"));
    assert_eq!(signing_id(&refresher), "break-glass");

    store.set(&[A]);
    eventually("the store's keys", || signing_id(&refresher) == A[..15]).await;
    assert_eq!(refresher.status().health, Health::Healthy);
}

#[tokio::test]
async fn start_degraded_still_fails_on_configuration_errors() {
    let store = Scripted::default();
    store.fail(ProviderErrorKind::Config);
    let break_glass =
        keyroll_core::KeySet::single("break-glass", keyroll_core::KeyMaterial::from(B)).unwrap();
    let err = Refresher::builder(store)
        .start_degraded(break_glass)
        .start()
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 1);
}

#[tokio::test]
async fn a_panicking_provider_is_reported_degraded_and_the_refresher_goes_on() {
    let store = Scripted::holding(&[A]);
    let refresher = Refresher::builder(store.clone())
        .policy(policy())
        .interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    store.panics.store(true, Ordering::SeqCst);
    eventually("degraded by the panic", || {
        refresher.status().health == Health::Degraded
    })
    .await;
    let status = refresher.status();
    let reason = status.last_error.unwrap();
    assert!(
        reason.contains("panicked") && reason.contains("scripted provider bug"),
        "{reason}"
    );
    let failures = status.consecutive_failures;
    eventually("still polling after the panic", || {
        refresher.status().consecutive_failures > failures
    })
    .await;
    assert_eq!(signing_id(&refresher), &A[..15], "the last good keys serve");

    store.panics.store(false, Ordering::SeqCst);
    store.set(&[B, A]);
    eventually("the loop went on", || signing_id(&refresher) == B[..15]).await;
    assert_eq!(refresher.status().health, Health::Healthy);
}

/// Starts a refresher on `runtime`, then drops the runtime with its task
/// after `polls` fetches by the task (0: before the task ever ran), and
/// checks that the status says so and the stale limit still closes the
/// keyring.
fn task_end_is_reported(runtime: tokio::runtime::Runtime, polls: usize) {
    let store = Scripted::holding(&[A]);
    let refresher = runtime
        .block_on(
            Refresher::builder(store.clone())
                .policy(policy())
                .interval(Duration::from_millis(20))
                .fail_closed_after(Duration::from_millis(300))
                .start(),
        )
        .unwrap();
    let signer = keyroll_core::Signer::new(refresher.keyring().clone());
    let token = signer.sign("session").unwrap();
    let started = store.fetches();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.fetches() < started + polls {
        assert!(std::time::Instant::now() < deadline, "the task never polled");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The task dies with its runtime, as it would on a crash of the task.
    drop(runtime);
    let status = refresher.status();
    assert_eq!(status.health, Health::Stopped);
    assert!(status.last_error.unwrap().contains("task ended"));
    assert!(signer.verify(&token).is_ok(), "within the limit the keys serve");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !refresher.keyring().is_closed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stale limit never closed the keyring"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(refresher.status().health, Health::Stale);
    assert_eq!(signer.verify(&token), Err(keyroll_core::VerifyError::Stale));
}

#[test]
fn when_the_task_ends_the_status_says_so_and_the_stale_limit_still_applies() {
    task_end_is_reported(tokio::runtime::Runtime::new().unwrap(), 2);
}

#[test]
fn a_task_dropped_before_its_first_poll_is_reported_as_ended_too() {
    // A current-thread runtime runs spawned tasks only inside `block_on`:
    // after `start` returns, the refresher's task has never been polled.
    // (Under load, the multi-thread case above could drop it unpolled too,
    // which the status then missed.)
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    task_end_is_reported(runtime, 0);
}

#[tokio::test]
async fn a_refresher_dropped_without_shutdown_is_loud_and_its_stale_limit_still_closes_the_keyring() {
    let store = Scripted::holding(&[A]);
    let refresher = Refresher::builder(store.clone())
        .policy(policy())
        .interval(Duration::from_millis(20))
        .fail_closed_after(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let keyring = refresher.keyring().clone();
    let clone = refresher.clone();
    drop(refresher);
    assert_eq!(keyring.stopped(), None, "another handle keeps it running");
    assert_eq!(clone.status().health, Health::Healthy);
    drop(clone);
    let reason = keyring.stopped().expect("the keyring says it is frozen");
    assert!(reason.contains("dropped without shutdown()"), "{reason}");
    task_ended(&store).await;
    let fetches = store.fetches();
    eventually("closed by the stale limit", || keyring.is_closed()).await;
    assert_eq!(store.fetches(), fetches, "nothing refreshes any more");
}

#[tokio::test]
async fn a_shut_down_refresher_says_so() {
    let store = Scripted::holding(&[A]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    refresher.shutdown().await;
    let status = refresher.status();
    assert_eq!(status.health, Health::Stopped);
    assert!(status.last_error.unwrap().contains("shut down"));
}

fn version(id: &str, material: &str) -> KeyVersion {
    KeyVersion::new(id, material)
}

#[tokio::test]
async fn a_revocation_applies_even_when_the_new_key_set_is_refused() {
    let store = Scripted::default();
    store.set_versions(vec![version("a", A)]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    let signer = keyroll_core::Signer::new(refresher.keyring().clone());
    let by_a = signer.sign("signed by a").unwrap();
    store.set_versions(vec![version("b", B), version("a", A)]);
    eventually("b signs", || signing_id(&refresher) == "b").await;
    assert!(signer.verify(&by_a).is_ok(), "a is a fallback");

    // A weak new key is refused, but a's revocation applies.
    store.set_versions(vec![
        version("weak", "short"),
        version("b", B),
        version("a", A).with_state(KeyState::Disabled),
    ]);
    eventually("a revoked", || refresher.keyring().load().key("a").is_none()).await;
    assert!(signer.verify(&by_a).is_err(), "a disabled key verifies nothing");
    assert_eq!(signing_id(&refresher), "b");
    let status = refresher.status();
    assert_eq!(status.health, Health::Degraded);
    assert!(status.last_error.unwrap().contains("weak"));
}

#[tokio::test]
async fn a_revoked_signing_key_without_a_usable_replacement_fails_closed_until_one_is_published() {
    let store = Scripted::default();
    store.set_versions(vec![version("a", A)]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    let signer = keyroll_core::Signer::new(refresher.keyring().clone());
    let by_a = signer.sign("signed by a").unwrap();

    store.set_versions(vec![
        version("weak", "short"),
        version("a", A).with_state(KeyState::Destroyed),
    ]);
    eventually("failed closed", || refresher.keyring().is_closed()).await;
    let status = refresher.status();
    assert_eq!(status.health, Health::Stale);
    assert!(status.last_error.unwrap().contains("revoked"));
    assert_eq!(signer.verify(&by_a), Err(keyroll_core::VerifyError::Stale));
    assert_eq!(signer.sign("revoked"), Err(keyroll_core::Closed::FailedClosed));

    store.set_versions(vec![
        version("b", B),
        version("a", A).with_state(KeyState::Destroyed),
    ]);
    eventually("reopened on b", || {
        !refresher.keyring().is_closed() && signing_id(&refresher) == "b"
    })
    .await;
    assert_eq!(refresher.status().health, Health::Healthy);
    assert!(signer.verify(&by_a).is_err());
    assert!(signer.verify(&signer.sign("new").unwrap()).is_ok());
}

#[tokio::test]
async fn a_signing_key_past_its_expiry_hands_signing_to_the_next_key() {
    let store = Scripted::default();
    let expiry = SystemTime::now() + Duration::from_millis(300);
    store.set_versions(vec![version("b", B).with_expires(expiry), version("a", A)]);
    let refresher = started(&store, Duration::from_secs(3600)).await;
    let signer = keyroll_core::Signer::new(refresher.keyring().clone());
    assert_eq!(signing_id(&refresher), "b");
    let by_b = signer.sign("signed by b").unwrap();
    eventually("a signs after b's expiry", || signing_id(&refresher) == "a").await;
    assert!(SystemTime::now() >= expiry);
    assert!(signer.verify(&by_b).is_err(), "b expired");
    let by_a = signer.sign("signed by a").unwrap();
    assert!(
        signer.verify(&by_a).is_ok(),
        "the replica verifies its own tokens"
    );
}

#[tokio::test]
async fn a_weak_break_glass_key_set_is_refused() {
    let store = Scripted::default();
    store.fail(ProviderErrorKind::Unavailable);
    let empty = keyroll_core::KeySet::single("break-glass", keyroll_core::KeyMaterial::from(""));
    assert!(matches!(empty, Err(keyroll_core::KeySetError::WeakKey { .. })));
    let short = keyroll_core::KeySet::single_with_strength(
        "break-glass",
        keyroll_core::KeyMaterial::from("short"),
        &keyroll_core::KeyStrength::any_non_empty(),
    )
    .unwrap();
    let err = Refresher::builder(store)
        .startup_timeout(Duration::from_millis(50))
        .start_degraded(short)
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("weak"), "{err}");
}

#[tokio::test]
async fn the_only_key_past_its_expiry_closes_the_keyring_for_every_door() {
    let store = Scripted::default();
    let expiry = SystemTime::now() + Duration::from_millis(300);
    store.set_versions(vec![version("a", A).with_expires(expiry)]);
    let refresher = started(&store, Duration::from_secs(3600)).await;
    let keyring = refresher.keyring().clone();
    assert!(keyring.serving_at(SystemTime::now()).is_ok());
    // The rule holds from the expiry moment on, before any refresher acts on it.
    assert_eq!(
        keyring.serving_at(expiry).err(),
        Some(keyroll_core::Closed::Expired)
    );
    eventually("failed closed after the expiry", || keyring.is_closed()).await;
    assert_eq!(
        keyring.serving_at(SystemTime::now()).err(),
        Some(keyroll_core::Closed::FailedClosed)
    );
    assert_eq!(
        keyroll_core::Signer::new(keyring.clone()).sign("x"),
        Err(keyroll_core::Closed::FailedClosed)
    );
    let status = refresher.status();
    assert_eq!(status.health, Health::Stale);
    assert!(status.last_error.unwrap().contains("revoked"));
    // A key the store publishes reopens it, without a restart.
    store.set_versions(vec![version("b", B), version("a", A).with_expires(expiry)]);
    refresher.refresh_now();
    eventually("reopened on b", || keyring.serving_at(SystemTime::now()).is_ok()).await;
    assert_eq!(signing_id(&refresher), "b");
}

#[tokio::test]
async fn the_status_says_who_reads_the_store_and_the_activation_delay_in_force() {
    let store = Scripted::holding(&[A]);
    // No activation delay asked for: a local store's is zero.
    let local = Refresher::builder(store.clone()).start().await.unwrap();
    let status = local.status();
    assert_eq!(
        (status.reach, status.activation_delay),
        (Reach::Local, Duration::ZERO)
    );
    let delayed = Refresher::builder(store.clone())
        .policy(policy().with_activation_delay(Duration::from_secs(90)))
        .start()
        .await
        .unwrap();
    assert_eq!(delayed.status().activation_delay, Duration::from_secs(90));
}

#[test]
fn a_key_set_whose_keys_all_expired_serves_nothing_even_without_a_refresher() {
    let start = SystemTime::now();
    let until = start + Duration::from_secs(60);
    let only = keyroll_core::KeyEntry::new(
        "a",
        keyroll_core::KeyMaterial::from(A),
        Some(SystemTime::UNIX_EPOCH),
        Some(until),
        Some(until),
    );
    let set = keyroll_core::KeySet::new(vec![only], start).unwrap();
    assert!(set.serves_at(start) && !set.serves_at(until));
    let keyring = keyroll_core::Keyring::new(set);
    assert!(keyring.serving_at(start).is_ok());
    let closed = keyring.serving_at(until).err().unwrap();
    assert_eq!(closed, keyroll_core::Closed::Expired);
    // The rule every format's sign applies: nothing signs past the expiry.
    assert!(keyring.signing_position(&keyring.load(), start).is_ok());
    assert_eq!(
        keyring.signing_position(&keyring.load(), until).err(),
        Some(keyroll_core::Closed::Expired)
    );
    // The native signer reads it from its role snapshot: the same answer.
    fn an_hour_on() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }
    let signer = keyroll_core::Signer::new(keyring.clone());
    assert!(signer.sign("now").is_ok());
    assert_eq!(
        signer.with_clock(an_hour_on).sign("later"),
        Err(keyroll_core::Closed::Expired)
    );
    assert!(closed.to_string().contains("nothing signs or verifies"));
}

#[test]
fn the_settled_generation_follows_every_install() {
    let keyring = keyroll_core::Keyring::new(
        keyroll_core::KeySet::single("a", keyroll_core::KeyMaterial::from(A)).unwrap(),
    );
    assert_eq!(keyring.settled_generation(), Some(1));
    let next = keyroll_core::KeySet::single("b", keyroll_core::KeyMaterial::from(B)).unwrap();
    assert_eq!(keyring.install(next), 2);
    assert_eq!(keyring.settled_generation(), Some(2));
    assert_eq!(keyring.settled_generation(), Some(keyring.load().generation()));
}

#[tokio::test]
async fn subscribers_wake_when_a_revocation_closes_the_keyring_and_when_it_reopens() {
    let store = Scripted::default();
    store.set_versions(vec![version("a", A)]);
    let refresher = started(&store, Duration::from_millis(20)).await;
    let mut changes = refresher.keyring().subscribe();
    changes.borrow_and_update();
    let generation = refresher.keyring().generation();

    store.set_versions(vec![version("a", A).with_state(KeyState::Destroyed)]);
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("told of the closing")
        .unwrap();
    assert!(refresher.keyring().is_closed());
    assert_eq!(
        *changes.borrow_and_update(),
        generation,
        "no new key set, the same generation"
    );

    store.set_versions(vec![
        version("b", B),
        version("a", A).with_state(KeyState::Destroyed),
    ]);
    tokio::time::timeout(Duration::from_secs(5), async {
        while refresher.keyring().is_closed() {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("told of the reopening");
}

#[tokio::test]
async fn the_next_change_is_the_stale_deadline_or_a_key_activation_whichever_comes_first() {
    let store = Scripted::holding(&[A]);
    let refresher = Refresher::builder(store.clone())
        .policy(policy())
        .interval(Duration::from_secs(3600))
        .fail_closed_after(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let keyring = refresher.keyring();
    let now = SystemTime::now();
    let next = keyring.next_change_after(now).expect("the stale deadline");
    let ahead = next.duration_since(now).unwrap();
    assert!(
        ahead > Duration::from_secs(590) && ahead <= Duration::from_secs(601),
        "{ahead:?}"
    );

    let activates = now + Duration::from_secs(60);
    keyring.install(
        keyroll_core::KeySet::new(
            vec![
                keyroll_core::KeyEntry::new("a", A.into(), Some(now), None, None),
                keyroll_core::KeyEntry::new("b", B.into(), Some(activates), None, None),
            ],
            now,
        )
        .unwrap(),
    );
    assert_eq!(keyring.next_change_after(now), Some(activates));
    let after = keyring
        .next_change_after(activates + Duration::from_secs(1))
        .expect("past the activation, the deadline again");
    let apart = after.duration_since(next).unwrap_or_else(|e| e.duration());
    assert!(apart < Duration::from_secs(5), "{after:?} vs {next:?}");
}

#[test]
fn the_keys_that_only_verify_are_every_verifying_key_but_the_signing_one() {
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let same_as_current = "refresher-key-A-0123456789abcdefghijklmnop";
    let set = keyroll_core::KeySet::new(
        vec![
            keyroll_core::KeyEntry::new("pending", B.into(), Some(now + hour), None, None),
            keyroll_core::KeyEntry::new("current", A.into(), Some(now - hour), None, None),
            keyroll_core::KeyEntry::new(
                "copy",
                same_as_current.into(),
                Some(now - hour - hour),
                Some(now - hour),
                None,
            ),
            keyroll_core::KeyEntry::new(
                "older",
                "refresher-key-C-0123456789abcdefghijklmnop".into(),
                Some(now - hour - hour - hour),
                Some(now - hour - hour),
                None,
            ),
        ],
        now,
    )
    .unwrap();
    let verifying: Vec<&str> = set.verifying_keys_at(now).map(|(key, _)| key.id()).collect();
    assert_eq!(verifying, ["current", "pending", "copy", "older"]);
    let only: Vec<&str> = set.verify_only_keys_at(now).map(|key| key.id()).collect();
    assert_eq!(
        only,
        ["pending", "older"],
        "neither the signing key nor its material again"
    );
}
