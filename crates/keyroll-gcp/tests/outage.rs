//! A Secret Manager outage never costs the service its keys, and an
//! unreachable endpoint is reported in seconds, not after a minute of retries.

mod common;

use std::time::{Duration, Instant};

use common::{provider, refresher, server_with};
use keyroll_core::{Health, KeyProvider, ProviderErrorKind, Signer};
use keyroll_gcp::GcpProvider;
use keyroll_testkit::conformance::{signs_with, strong_key};
use keyroll_testkit::wait_until;

const SECRET: &str = "projects/keyroll-test/secrets/app-key";

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_keeps_the_last_good_keys_and_a_restarted_one_is_followed() {
    let server = server_with(SECRET).await;
    let first = strong_key();
    server.add_version(SECRET, first.as_bytes());
    let refresher = refresher(provider(&server, SECRET)).await;
    let signer = Signer::new(refresher.keyring().clone()).with_salt("outage");
    let before = signer.sign("user=7").unwrap();

    server.stop().await;
    wait_until("the refresher notices the outage", || {
        refresher.status().health == Health::Degraded
    })
    .await;
    assert!(signs_with(&refresher, &first), "the last good key keeps signing");
    assert_eq!(signer.verify(&before).unwrap().value, "user=7");

    // Rotated while the server was down; it comes back with its state.
    let second = strong_key();
    server.add_version(SECRET, second.as_bytes());
    server.restart().await;
    wait_until("the refresher recovers and follows the rotation", || {
        refresher.status().health == Health::Healthy && signs_with(&refresher, &second)
    })
    .await;
    let old = signer
        .verify(&before)
        .expect("tokens from before the outage still verify");
    assert!(old.needs_resign());
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_endpoint_is_reported_unavailable_in_seconds() {
    // A port that was just free and has nothing listening.
    let endpoint = format!("http://127.0.0.1:{}", keyroll_testkit::ports::free_ports(1));
    let provider = GcpProvider::builder()
        .secret(SECRET)
        .endpoint(&endpoint)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = provider.fetch().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable, "{error}");
    assert!(error.to_string().contains("check the endpoint"), "{error}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    println!("dead endpoint reported after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_answering_unavailable_is_reported_unavailable_after_the_retry() {
    let server = server_with(SECRET).await;
    server.set_unavailable(true);
    let started = Instant::now();
    let error = provider(&server, SECRET).fetch().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable, "{error}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let lists = server.requests().len();
    assert_eq!(lists, 2, "one retry: at most 2 attempts");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_endpoint_is_reported_unavailable_within_the_time_limit() {
    // Accepts connections and never answers.
    let listener = keyroll_testkit::ports::tokio_listener();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let provider = GcpProvider::builder()
        .secret(SECRET)
        .endpoint(&endpoint)
        .attempt_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = provider.fetch().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable, "{error}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    hold.abort();
}
