//! Store answers and settings are outside data: absurd times never panic, a
//! URI's user info never shows, and the policy in use tells the provider how
//! many versions it can use.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use keyroll_core::{
    FirstSeen, Health, KeyProvider, KeySource, KeyVersion, Policy, ProviderError, Refresher, Role,
    async_trait,
};

const OLD: &str = "outside-old-0123456789abcdefghijklmnopqrstuvwxyz";
const FAR: &str = "outside-far-0123456789abcdefghijklmnopqrstuvwxyz";

/// The latest moment a `SystemTime` holds here: what an AWS `CreatedDate`
/// of 1e300 seconds becomes.
fn far_future() -> SystemTime {
    let (mut at, mut step) = (SystemTime::UNIX_EPOCH, Duration::MAX);
    while !step.is_zero() {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

fn versions() -> Vec<KeyVersion> {
    vec![
        KeyVersion::new("far", FAR).with_created(far_future()),
        KeyVersion::new("old", OLD).with_created(SystemTime::now() - Duration::from_secs(3600)),
    ]
}

#[test]
fn a_creation_date_at_the_end_of_time_and_a_window_of_duration_max_never_panic() {
    let now = SystemTime::now();
    for window in [Duration::from_secs(60), Duration::MAX] {
        let policy = Policy::default()
            .with_activation_delay(Duration::from_secs(3600))
            .with_fallback_window(window);
        let set = policy.evaluate(&versions(), &FirstSeen::new(), now).unwrap();
        // The far-future version never activates: the old one signs, the far one only verifies.
        assert_eq!(set.signing_key().id(), "old", "window {window:?}");
        let far = set.key("far").unwrap();
        assert_ne!(far.role_at(now), Role::Current);
    }
    // A window of Duration::MAX keeps a superseded key verifying (until the end of time).
    let two = vec![
        KeyVersion::new("new", FAR).with_created(now - Duration::from_secs(60)),
        KeyVersion::new("old", OLD).with_created(now - Duration::from_secs(3600)),
    ];
    let set = Policy::default()
        .with_activation_delay(Duration::ZERO)
        .with_fallback_window(Duration::MAX)
        .evaluate(&two, &FirstSeen::new(), now)
        .unwrap();
    let old = set.key("old").unwrap();
    assert_eq!(old.role_at(now), Role::Fallback);
}

#[derive(Debug, Clone, Default)]
struct Store {
    fetches: Arc<AtomicUsize>,
    limit: Arc<Mutex<Option<usize>>>,
}

#[async_trait]
impl KeyProvider for Store {
    async fn fetch_newest(&self, limit: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        *self.limit.lock().unwrap() = Some(limit);
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(versions())
    }
    fn reach(&self) -> keyroll_core::Reach {
        keyroll_core::Reach::Local
    }
}

#[tokio::test]
async fn a_refresher_keeps_polling_with_a_transition_at_the_end_of_time() {
    let store = Store::default();
    let refresher = Refresher::builder(store.clone())
        .policy(Policy::default().with_activation_delay(Duration::from_secs(3600)))
        .interval(Duration::from_millis(20))
        .jitter(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let seen = store.fetches.load(Ordering::SeqCst);
    // The loop computes its next wake-up from the far-future activation on
    // every turn; had it panicked, the fetches would stop.
    keyroll_testkit_free_wait(|| store.fetches.load(Ordering::SeqCst) >= seen + 5).await;
    assert_eq!(refresher.status().health, Health::Healthy);
    refresher.shutdown().await;
}

#[tokio::test]
async fn the_refresher_tells_the_provider_how_many_versions_its_policy_uses() {
    for (max_fallbacks, expected) in [(10, 12), (4, 6), (0, 2), (usize::MAX, usize::MAX)] {
        let store = Store::default();
        let refresher = Refresher::builder(store.clone())
            .policy(Policy::default().with_max_fallbacks(max_fallbacks))
            .start()
            .await
            .unwrap();
        assert_eq!(*store.limit.lock().unwrap(), Some(expected));
        refresher.shutdown().await;
        let store = Store::default();
        Refresher::builder(store.clone())
            .policy(Policy::default().with_max_fallbacks(max_fallbacks))
            .load_once()
            .await
            .unwrap();
        assert_eq!(*store.limit.lock().unwrap(), Some(expected), "load_once");
    }
}

/// Polls `done` every 5 ms for up to 15 s (keyroll-core cannot use the testkit).
async fn keyroll_testkit_free_wait(mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(15), "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn user_info_in_a_uri_never_shows_in_display_debug_or_errors() {
    for uri in [
        "vault://user:pa55word@vault:8200/secret/app",
        "vault://pa55word@vault:8200/secret/app?regoin=x",
        "aws-sm://app?endpoint=http://u:pa55word@h:4566&regoin=x",
        "aws-sm://app?endpoint=http%3A%2F%2Fu%3Apa55word%40h&regoin=x",
        "gcp-sm://projects/p/secrets/s?endpoint=https://pa55word@h&x=1",
        "u:pa55word@host",
    ] {
        let shown = match KeySource::parse(uri) {
            Ok(source) => {
                let err = source.expect_params(&["field"]).err();
                format!(
                    "{source} {source:?} {} {err:?} {}",
                    source.as_str(),
                    err.as_ref().map(|e| e.to_string()).unwrap_or_default()
                )
            }
            Err(err) => format!("{err} {err:?}"),
        };
        assert!(!shown.contains("pa55word"), "{uri}: {shown}");
    }
    // Parts still read whole, and plain URIs show as written.
    let source = KeySource::parse("aws-sm://app?endpoint=http%3A%2F%2Fu%3Apa55word%40h").unwrap();
    assert_eq!(source.param("endpoint"), Some("http://u:pa55word@h"));
    let plain = "vault://127.0.0.1:8200/secret/app%20key?field=key&tls=false";
    assert_eq!(KeySource::parse(plain).unwrap().to_string(), plain);
}
