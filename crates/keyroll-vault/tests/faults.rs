//! Every way a Vault can fail, against a running refresher on a real OpenBao:
//! the last good key set keeps serving, the status says degraded and why, and
//! the refresher recovers within one poll interval of the repair.
//!
//! The store's own means are used where it has them (sealing the server for
//! 503s, SIGSTOP for a hang, writing a short or an empty key, deleting the
//! token's policy); the fault proxy of the testkit covers what OpenBao cannot
//! be made to do (a 500 from a load balancer, dropped connections, a garbled
//! body). A server killed mid-run and restarted is `outage.rs`
//! (`a_killed_server_keeps_the_last_good_keys_and_a_restarted_one_is_followed`).
//!
//! `cargo test -p keyroll-vault --test faults -- --nocapture` prints the
//! measured recovery times.

mod common;

use std::cell::Cell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{MOUNT, builder, put, read_only_policy, token};
use keyroll_core::{Health, KeyMaterial, KeySet, Refresher, RefresherBuilder, Signer, VerifyError};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::faults::{self, Fault, FaultProxy, RideOut, ride_out};
use keyroll_testkit::openbao::OpenBao;
use keyroll_testkit::wait_until;
use keyroll_vault::{Auth, Credential, VaultProvider};

/// The providers' request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// The recovery bound: one poll interval plus the backoff cap, plus one
/// request timeout for a fetch still in flight when the store is repaired.
fn bound() -> Duration {
    faults::recovery_bound(REQUEST_TIMEOUT)
}

/// A refresher builder over `provider` with the test's timings and no
/// activation delay (a published key signs at once).
fn refresher_builder(provider: VaultProvider) -> RefresherBuilder {
    faults::refresher_builder(provider, REQUEST_TIMEOUT * 2)
}

async fn start(provider: VaultProvider) -> Refresher {
    refresher_builder(provider)
        .start()
        .await
        .expect("the refresher starts")
}

/// A server holding one strong key at `secret/app`.
fn seeded() -> Option<OpenBao> {
    let bao = OpenBao::start()?;
    put(&bao, "app", &strong_key());
    Some(bao)
}

/// Rides out `fault` at a proxy between the provider and a seeded server;
/// see [`faults::ride_out_behind`]. `None` when OpenBao is not installed.
async fn behind_a_proxy(name: &str, fault: Fault, reason: &str) -> Option<RideOut> {
    let bao = seeded()?;
    let proxy = FaultProxy::start(&bao.address()).await;
    let refresher = start(builder(&bao, "app").address(proxy.address()).build().unwrap()).await;
    let outcome = faults::ride_out_behind(name, &refresher, &proxy, fault, reason, bound()).await;
    refresher.shutdown().await;
    Some(outcome)
}

/// Deletes (soft) version `version` of `secret/app`: what an operator does
/// with a bad version. Vault reports it deleted; keyroll never reads it again.
fn delete_version(bao: &OpenBao, version: u64) {
    bao.bao(&[
        "kv",
        "delete",
        &format!("-versions={version}"),
        &format!("{MOUNT}/app"),
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_server_at_startup_fails_the_start_within_the_startup_timeout_and_says_why() {
    let Some(bao) = seeded() else { return };
    bao.bao(&["operator", "seal"]);
    let startup_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = refresher_builder(builder(&bao, "app").build().unwrap())
        .startup_timeout(startup_timeout)
        .start()
        .await
        .unwrap_err();
    let took = started.elapsed();
    let message = error.to_string();
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(message.contains("sealed"), "names the likely cause: {message}");
    assert!(message.contains("secret/app"), "names the secret: {message}");
    assert!(error.attempts > 1, "retried within the timeout: {error:?}");
    assert!(
        took <= startup_timeout + REQUEST_TIMEOUT,
        "gave up after {took:?}, the startup timeout is {startup_timeout:?}"
    );
    eprintln!(
        "sealed at startup: failed after {took:?} and {} attempts: {message}",
        error.attempts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_server_answers_503_and_the_last_keys_serve_until_it_is_unsealed() {
    let Some(bao) = seeded() else { return };
    let refresher = start(builder(&bao, "app").build().unwrap()).await;
    let key = bao.unseal_key();
    ride_out(
        "vault sealed (503)",
        &refresher,
        async || {
            bao.bao(&["operator", "seal"]);
        },
        "HTTP 503",
        async || {
            bao.bao(&["operator", "unseal", &key]);
        },
        bound(),
    )
    .await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_server_times_out_and_the_last_keys_serve_until_it_answers_again() {
    let Some(bao) = seeded() else { return };
    let refresher = start(builder(&bao, "app").build().unwrap()).await;
    // Both the fault and the repair need the server mutably.
    let bao = Mutex::new(bao);
    ride_out(
        "vault hung (SIGSTOP)",
        &refresher,
        async || bao.lock().unwrap().pause(),
        "cannot reach Vault",
        async || bao.lock().unwrap().resume(),
        bound(),
    )
    .await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_500_in_front_of_vault_keeps_the_last_keys() {
    behind_a_proxy(
        "vault behind a proxy answering 500",
        Fault::Status(500),
        "HTTP 500",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_closed_without_an_answer_keep_the_last_keys() {
    behind_a_proxy("vault connections closed", Fault::Close, "cannot reach Vault").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_answer_is_refused_and_the_last_keys_serve() {
    if let Some(outcome) = behind_a_proxy("vault answer garbled", Fault::CorruptBody, "KV v2").await {
        assert!(outcome.last_error.starts_with("invalid key data"), "{outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weak_key_published_is_refused_by_the_policy_until_the_version_is_deleted() {
    let Some(bao) = seeded() else { return };
    let refresher = start(builder(&bao, "app").build().unwrap()).await;
    let weak = Cell::new(0);
    let outcome = ride_out(
        "vault weak key published",
        &refresher,
        async || weak.set(put(&bao, "app", "short-key")),
        "is weak",
        async || delete_version(&bao, weak.get()),
        bound(),
    )
    .await;
    assert!(
        outcome
            .last_error
            .contains(&format!("key {} is weak", weak.get())),
        "names the version, never the key: {outcome:?}"
    );
    assert!(!outcome.last_error.contains("short-key"), "{outcome:?}");
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_secret_published_is_refused_until_the_version_is_deleted() {
    let Some(bao) = seeded() else { return };
    let refresher = start(builder(&bao, "app").build().unwrap()).await;
    let empty = Cell::new(0);
    ride_out(
        "vault empty secret",
        &refresher,
        async || empty.set(put(&bao, "app", "")),
        "empty field `key`",
        async || delete_version(&bao, empty.get()),
        bound(),
    )
    .await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_whose_policy_is_deleted_is_denied_and_the_last_keys_serve_until_it_is_restored() {
    let Some(bao) = seeded() else { return };
    read_only_policy(&bao, "app-reader", "app");
    let reader = token(&bao, "app-reader", &[]);
    let provider = builder(&bao, "app")
        .auth(Auth::token(Credential::value(reader)))
        .build()
        .unwrap();
    let refresher = start(provider).await;
    ride_out(
        "vault permission denied",
        &refresher,
        async || {
            bao.bao(&["policy", "delete", "app-reader"]);
        },
        "permission denied",
        async || read_only_policy(&bao, "app-reader", "app"),
        bound(),
    )
    .await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_stale_limit_the_keys_fail_closed_after_it_and_reopen_when_the_store_answers_without_one_they_keep_serving()
 {
    let Some(bao) = seeded() else { return };
    let limit = Duration::from_secs(1);
    let limited = refresher_builder(builder(&bao, "app").build().unwrap())
        .fail_closed_after(limit)
        .start()
        .await
        .unwrap();
    let unlimited = start(builder(&bao, "app").build().unwrap()).await;
    let closing = Signer::new(limited.keyring().clone()).with_salt("stale");
    let serving = Signer::new(unlimited.keyring().clone()).with_salt("stale");
    let (closing_token, serving_token) = (closing.sign("user=7").unwrap(), serving.sign("user=7").unwrap());

    bao.bao(&["operator", "seal"]);
    let sealed = Instant::now();
    wait_until("the limited refresher fails closed", || {
        limited.status().health == Health::Stale
    })
    .await;
    let closed_after = sealed.elapsed();
    // Measured from the last success, not from the seal: the store last confirmed the keys a
    // poll before it was sealed.
    let staleness = limited.status().staleness();
    assert!(
        staleness >= limit,
        "closed at a staleness of {staleness:?}, limit {limit:?}"
    );
    assert!(
        closed_after <= limit + bound(),
        "closed after {closed_after:?}, limit {limit:?}"
    );
    assert!(limited.keyring().is_closed());
    assert_eq!(closing.verify(&closing_token), Err(VerifyError::Stale));
    let status = limited.status();
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503")),
        "{status:?}"
    );
    // Without a limit the same outage only degrades.
    assert_eq!(unlimited.status().health, Health::Degraded);
    assert_eq!(serving.verify(&serving_token).unwrap().value, "user=7");

    bao.bao(&["operator", "unseal", &bao.unseal_key()]);
    let unsealed = Instant::now();
    wait_until("the limited refresher reopens", || {
        limited.status().health == Health::Healthy
    })
    .await;
    let reopened_after = unsealed.elapsed();
    assert!(reopened_after <= bound(), "reopened after {reopened_after:?}");
    assert!(!limited.keyring().is_closed());
    assert_eq!(closing.verify(&closing_token).unwrap().value, "user=7");
    eprintln!(
        "stale limit {limit:?}: failed closed {closed_after:?} after the seal, reopened {reopened_after:?} after the unseal"
    );
    limited.shutdown().await;
    unlimited.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_down_at_startup_starts_degraded_on_the_break_glass_keys_and_switches_when_it_answers() {
    let Some(bao) = seeded() else { return };
    bao.bao(&["operator", "seal"]);
    let break_glass = strong_key();
    let started = Instant::now();
    let refresher = refresher_builder(builder(&bao, "app").build().unwrap())
        .startup_timeout(Duration::from_millis(500))
        .start_degraded(KeySet::single("break-glass", KeyMaterial::from(break_glass.as_str())).unwrap())
        .start()
        .await
        .expect("starts degraded instead of failing");
    let start_took = started.elapsed();
    let status = refresher.status();
    assert_eq!(status.health, Health::Degraded, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503")),
        "{status:?}"
    );
    let signer = Signer::new(refresher.keyring().clone()).with_salt("break-glass");
    let token = signer.sign("user=7").unwrap();
    assert_eq!(signer.verify(&token).unwrap().key.id.as_ref(), "break-glass");

    bao.bao(&["operator", "unseal", &bao.unseal_key()]);
    let unsealed = Instant::now();
    wait_until("the store's keys replace the break-glass keys", || {
        refresher.status().health == Health::Healthy && refresher.keyring().load().signing_key().id() == "1"
    })
    .await;
    let switched_after = unsealed.elapsed();
    assert!(switched_after <= bound(), "switched after {switched_after:?}");
    assert_eq!(
        signer
            .verify(&signer.sign("user=8").unwrap())
            .unwrap()
            .key
            .id
            .as_ref(),
        "1"
    );
    eprintln!(
        "start degraded: started on break-glass keys after {start_took:?}, switched to the store's keys \
         {switched_after:?} after the unseal"
    );
    refresher.shutdown().await;
}
