//! Every way Secret Manager can fail, against a running refresher on the
//! testkit's Secret Manager server: the last good key set keeps serving, the
//! status says degraded and why, and the refresher recovers within one poll
//! interval of the repair.
//!
//! The server's own hooks are used where it has them (`set_unavailable` for
//! 503 `UNAVAILABLE`, `deny` for 403 `PERMISSION_DENIED`, disabling a bad
//! version); the fault proxy of the testkit covers the rest (a 500 from a load
//! balancer, a hang, dropped connections, a garbled body). A server stopped
//! mid-run and restarted is `outage.rs`
//! (`a_stopped_server_keeps_the_last_good_keys_and_a_restarted_one_is_followed`).
//!
//! `cargo test -p keyroll-gcp --test faults -- --nocapture` prints the
//! measured recovery times.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::server_with;
use keyroll_core::{Refresher, RefresherBuilder};
use keyroll_gcp::GcpProvider;
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::faults::{self, Fault, FaultProxy, ride_out};
use keyroll_testkit::gcp::{SecretManagerServer, VersionState};

const SECRET: &str = "projects/keyroll-test/secrets/app-key";

/// The refreshers' limit for one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The recovery bound: one poll interval plus the backoff cap, plus one fetch
/// timeout for a fetch still in flight when the store is repaired.
fn bound() -> Duration {
    faults::recovery_bound(FETCH_TIMEOUT)
}

/// A provider for `SECRET` at `endpoint`, with a short attempt timeout.
fn provider_at(endpoint: &str) -> GcpProvider {
    GcpProvider::builder()
        .secret(SECRET)
        .endpoint(endpoint)
        .attempt_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn refresher_builder(provider: GcpProvider) -> RefresherBuilder {
    faults::refresher_builder(provider, FETCH_TIMEOUT)
}

async fn start(provider: GcpProvider) -> Refresher {
    refresher_builder(provider)
        .start()
        .await
        .expect("the refresher starts")
}

/// A server holding one strong key in `SECRET`.
async fn seeded() -> SecretManagerServer {
    let server = server_with(SECRET).await;
    server.add_version(SECRET, strong_key().as_bytes());
    server
}

/// Rides out `fault` at a proxy between the provider and a seeded server;
/// see [`faults::ride_out_behind`].
async fn behind_a_proxy(name: &str, fault: Fault, reason: &str) {
    let server = seeded().await;
    let proxy = FaultProxy::start(&server.endpoint()).await;
    let refresher = start(provider_at(&proxy.address())).await;
    faults::ride_out_behind(name, &refresher, &proxy, fault, reason, bound()).await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_store_at_startup_fails_the_start_within_the_startup_timeout_and_says_why() {
    let server = seeded().await;
    server.set_unavailable(true);
    let startup_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = refresher_builder(provider_at(&server.endpoint()))
        .startup_timeout(startup_timeout)
        .start()
        .await
        .unwrap_err();
    let took = started.elapsed();
    let message = error.to_string();
    assert!(message.contains("store unavailable"), "{message}");
    assert!(message.contains(SECRET), "names the secret: {message}");
    assert!(
        took <= startup_timeout + FETCH_TIMEOUT,
        "gave up after {took:?}, the startup timeout is {startup_timeout:?}"
    );
    eprintln!(
        "unavailable at startup: failed after {took:?} and {} attempts: {message}",
        error.attempts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_answering_503_keeps_the_last_keys_until_it_is_back() {
    let server = seeded().await;
    let refresher = start(provider_at(&server.endpoint())).await;
    ride_out(
        "gcp unavailable (503)",
        &refresher,
        async || server.set_unavailable(true),
        "store unavailable",
        async || server.set_unavailable(false),
        bound(),
    )
    .await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_500_in_front_of_the_store_keeps_the_last_keys() {
    behind_a_proxy(
        "gcp behind a proxy answering 500",
        Fault::Status(500),
        "store unavailable",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_store_times_out_and_the_last_keys_serve_until_it_answers() {
    behind_a_proxy("gcp hung", Fault::Hang, "store unavailable").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_closed_without_an_answer_keep_the_last_keys() {
    behind_a_proxy("gcp connections closed", Fault::Close, "store unavailable").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_answer_is_refused_and_the_last_keys_serve() {
    behind_a_proxy("gcp answer garbled", Fault::CorruptBody, "invalid key data").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weak_key_published_is_refused_by_the_policy_until_the_version_is_disabled() {
    let server = seeded().await;
    let refresher = start(provider_at(&server.endpoint())).await;
    let weak = Mutex::new(String::new());
    let outcome = ride_out(
        "gcp weak key published",
        &refresher,
        async || *weak.lock().unwrap() = server.add_version(SECRET, b"short-key"),
        "is weak",
        async || server.set_state(&weak.lock().unwrap(), VersionState::Disabled),
        bound(),
    )
    .await;
    assert!(!outcome.last_error.contains("short-key"), "{outcome:?}");
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_secret_published_is_refused_until_the_version_is_disabled() {
    let server = seeded().await;
    let refresher = start(provider_at(&server.endpoint())).await;
    let empty = Mutex::new(String::new());
    ride_out(
        "gcp empty secret",
        &refresher,
        async || *empty.lock().unwrap() = server.add_version(SECRET, b""),
        "0 bytes long",
        async || server.set_state(&empty.lock().unwrap(), VersionState::Disabled),
        bound(),
    )
    .await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn permission_denied_keeps_the_last_keys_until_access_is_granted_again() {
    let server = seeded().await;
    let refresher = start(provider_at(&server.endpoint())).await;
    ride_out(
        "gcp permission denied",
        &refresher,
        async || server.deny("*", SECRET),
        "permission denied",
        async || server.allow_all(),
        bound(),
    )
    .await;
    refresher.shutdown().await;
}
