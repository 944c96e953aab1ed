//! Careless URIs and big secrets: no password shown, no plaintext to the
//! network unless allowed, hundreds of versions load within the start-up
//! timeout, a fetch cut short keeps what it read, and the policy in use, not
//! the default one, decides how many versions are read.

mod common;

use std::time::{Duration, Instant};

use common::{accesses, provider, server_with};
use keyroll_core::{FromSource, KeyProvider, Policy, ProviderErrorKind, Refresher};
use keyroll_gcp::GcpProvider;
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::{endpoints, fallback_count};

const SECRET: &str = "projects/p/secrets/hardening";

#[test]
fn user_info_in_a_uri_or_endpoint_is_refused_and_never_shown() {
    endpoints::assert_user_info_refused(
        GcpProvider::from_source,
        &[
            "gcp-sm://projects/p/secrets/s?endpoint=http://u:pa55word@127.0.0.1:8085",
            "gcp-sm://projects/p/secrets/s?endpoint=https://pa55word@secretmanager.googleapis.com&x=1",
            "gcp-sm://projects/p/secrets/s?endpoint=http%3A%2F%2Fu%3Apa55word%40127.0.0.1",
        ],
        "pa55word",
    );
}

#[test]
fn plain_http_is_refused_off_this_machine_unless_allowed_and_always_warned_about() {
    endpoints::assert_plaintext_rules(
        GcpProvider::from_source,
        "gcp-sm://projects/p/secrets/s?endpoint=http://sm.internal:8085",
        &[
            "gcp-sm://projects/p/secrets/s?endpoint=http://sm.internal:8085&insecure_http=true",
            "gcp-sm://projects/p/secrets/s?endpoint=http://127.0.0.1:8085",
            "gcp-sm://projects/p/secrets/s?endpoint=http://[::1]:8085",
        ],
        "gcp-sm://projects/p/secrets/s?endpoint=https://sm.internal",
        "GCP Secret Manager",
    );
}

#[test]
fn zero_attempts_or_a_zero_timeout_is_an_error_as_on_the_other_stores() {
    let new = || GcpProvider::builder().secret(SECRET);
    assert_eq!(
        new().max_attempts(0).build().unwrap_err().kind(),
        ProviderErrorKind::Config
    );
    assert_eq!(
        new().attempt_timeout(Duration::ZERO).build().unwrap_err().kind(),
        ProviderErrorKind::Config
    );
    assert!(new().max_attempts(1).build().is_ok());
    assert!(
        new()
            .attempt_timeout(Duration::MAX)
            .max_attempts(u32::MAX)
            .build()
            .is_ok(),
        "saturates, never panics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_enabled_versions_load_within_the_startup_timeout_reading_only_what_the_policy_uses() {
    let server = server_with(SECRET).await;
    for _ in 0..300 {
        server.add_version(SECRET, strong_key().as_bytes());
    }
    let startup_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let refresher = Refresher::builder(provider(&server, SECRET))
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .startup_timeout(startup_timeout)
        .fetch_timeout(startup_timeout)
        .start()
        .await
        .expect("300 versions load within the startup timeout");
    let took = started.elapsed();
    println!(
        "300 enabled versions: started in {took:?}, {} payloads read",
        accesses(&server).len()
    );
    assert!(took < startup_timeout, "{took:?}");
    assert_eq!(accesses(&server).len(), keyroll_core::DEFAULT_MAX_FALLBACKS + 2);
    assert_eq!(fallback_count(&refresher), keyroll_core::DEFAULT_MAX_FALLBACKS);
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_cut_short_keeps_the_versions_it_read() {
    let server = server_with(SECRET).await;
    for _ in 0..6 {
        server.add_version(SECRET, strong_key().as_bytes());
    }
    // Versions 6, 5, 4 are read, then 3 fails.
    server.deny("secretmanager.versions.access", &format!("{SECRET}/versions/3"));
    let provider = provider(&server, SECRET);
    provider.fetch().await.unwrap_err();
    assert_eq!(accesses(&server).len(), 4);
    server.allow_all();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions.len(), 6);
    let read: Vec<String> = accesses(&server).split_off(4);
    assert_eq!(read.len(), 3, "only versions 3, 2, 1 are read again: {read:?}");
    assert!(read.iter().all(|r| !r.contains("/versions/6")), "{read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_fallbacks_ten_with_twelve_versions_keeps_ten_fallbacks() {
    let server = server_with(SECRET).await;
    for _ in 0..12 {
        server.add_version(SECRET, strong_key().as_bytes());
    }
    let counts = keyroll_testkit::fallbacks_by_policy(|| provider(&server, SECRET)).await;
    assert_eq!(counts, [10, keyroll_core::DEFAULT_MAX_FALLBACKS]);
}
