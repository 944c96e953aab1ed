//! A Vault outage never costs the service its keys: killed, hung and
//! restarted servers against a running refresher.

mod common;

use std::time::{Duration, Instant};

use common::{builder, provider, put};
use keyroll_core::{Health, KeyProvider, Policy, ProviderErrorKind, Refresher, Signer};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::openbao::OpenBao;
use keyroll_testkit::wait_until;

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_keeps_the_last_good_keys_and_a_restarted_one_is_followed() {
    let Some(mut bao) = OpenBao::start() else { return };
    let first = strong_key();
    put(&bao, "app", &first);
    let refresher = Refresher::builder(provider(&bao, "app"))
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_millis(100))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let signer = Signer::new(refresher.keyring().clone()).with_salt("outage");
    let before = signer.sign("user=7").unwrap();

    bao.kill();
    wait_until("the refresher notices the outage", || {
        refresher.status().health == Health::Degraded
    })
    .await;
    let status = refresher.status();
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot reach Vault")),
        "{status:?}"
    );
    // Still serving: the last good keys sign and verify.
    assert_eq!(signer.verify(&before).unwrap().value, "user=7");
    assert_eq!(
        signer
            .verify(&signer.sign("during").unwrap())
            .unwrap()
            .key
            .id
            .as_ref(),
        "1"
    );

    // The dev server comes back empty: the operator re-seeds it with the
    // same key, then rotates.
    bao.restart();
    put(&bao, "app", &first);
    let second = strong_key();
    put(&bao, "app", &second);
    wait_until("the refresher recovers and follows the rotation", || {
        refresher.status().health == Health::Healthy
            && refresher
                .keyring()
                .load()
                .signing_key()
                .material()
                .expose_secret()
                == second.as_bytes()
    })
    .await;
    let old = signer
        .verify(&before)
        .expect("tokens from before the outage still verify");
    assert!(old.needs_resign());
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_server_is_reported_unavailable_within_the_request_timeout() {
    let Some(mut bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    let provider = builder(&bao, "app")
        .attempt_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    provider.fetch().await.unwrap();

    bao.pause();
    let started = Instant::now();
    let err = provider.fetch().await.unwrap_err();
    let took = started.elapsed();
    bao.resume();
    assert_eq!(err.kind(), ProviderErrorKind::Unavailable, "{err}");
    assert!(
        took < Duration::from_secs(3),
        "a hung server took {took:?} to report"
    );
    eprintln!("hung server reported after {took:?}");
    assert!(
        provider.fetch().await.is_ok(),
        "works again once the server answers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_server_is_reported_unavailable_at_once() {
    let Some(mut bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    let provider = provider(&bao, "app");
    provider.fetch().await.unwrap();
    bao.kill();
    let started = Instant::now();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("server is up"),
        "says what to check: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresher_cannot_start_without_a_server_but_says_why() {
    let Some(mut bao) = OpenBao::start() else { return };
    let provider = provider(&bao, "app");
    bao.kill();
    let err = Refresher::builder(provider)
        .startup_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot reach Vault"), "{err}");
}
