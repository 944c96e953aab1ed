//! A moto server killed mid-run and restarted: the keyring keeps its last
//! good keys, reports degraded, and recovers.

mod common;

use std::time::{Duration, Instant};

use common::{admin, create, policy, provider, refresher, unique_name};
use keyroll_core::{Health, Signer};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::moto::Moto;
use keyroll_testkit::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_keeps_the_last_good_keys_and_recovers_after_restart() {
    let Some(mut moto) = Moto::start() else { return };
    let secret = unique_name("outage");
    let key = strong_key();
    // A fixed request token makes the version id survive re-seeding.
    let token = "keyroll-outage-test-version-0000000001";
    let v1 = create(&admin(&moto), &secret, &key, Some(token)).await;
    assert_eq!(v1, token);
    let reader = provider(&moto, &secret);
    let running = refresher(reader.clone(), policy()).await;
    let signer = Signer::new(running.keyring().clone()).with_salt("outage");
    let token_before = signer.sign("signed before the outage").unwrap();

    moto.kill();
    let killed = Instant::now();
    wait_until("the refresher reports degraded", || {
        running.status().health == Health::Degraded
    })
    .await;
    let status = running.status();
    assert!(status.last_error.is_some(), "{status:?}");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "noticed after {:?}",
        killed.elapsed()
    );
    assert_eq!(
        running.keyring().load().signing_key().id(),
        v1,
        "the last good key keeps signing"
    );
    assert!(signer.verify(&token_before).is_ok());
    assert!(signer.verify(&signer.sign("during the outage").unwrap()).is_ok());

    moto.restart();
    create(&admin(&moto), &secret, &key, Some(token)).await;
    wait_until("the refresher is healthy again", || {
        running.status().health == Health::Healthy
    })
    .await;
    assert_eq!(running.status().consecutive_failures, 0);
    assert_eq!(running.keyring().load().signing_key().id(), v1);
    assert!(signer.verify(&token_before).is_ok(), "tokens survive the outage");
    running.shutdown().await;
}
