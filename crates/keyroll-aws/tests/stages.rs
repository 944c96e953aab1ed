//! Stage labels, deprecated versions, `rotate`/`promote` and the billed-call
//! budget, against moto's server.

mod common;

use std::time::Duration;

use common::{admin, create, policy, provider, put, refresher, unique_name};
use keyroll_core::{KeyMaterial, KeyProvider, KeyVersion, Refresher, Role, Signer, Stage};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::moto::Moto;
use keyroll_testkit::wait_until;

fn find<'a>(versions: &'a [KeyVersion], id: &str) -> &'a KeyVersion {
    versions
        .iter()
        .find(|v| v.id == id)
        .unwrap_or_else(|| panic!("version {id} reported; got {versions:?}"))
}

fn role_of(refresher: &Refresher, id: &str) -> Option<Role> {
    let set = refresher.keyring().load();
    let now = std::time::SystemTime::now();
    set.keys().iter().find(|k| k.id() == id).map(|k| k.role_at(now))
}

fn signing_id(refresher: &Refresher) -> String {
    refresher.keyring().load().signing_key().id().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_move_from_pending_to_current_to_previous_to_deprecated() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("stages");
    let v1 = create(&admin(&moto), &secret, &strong_key(), None).await;
    let provider = provider(&moto, &secret);

    let v2 = provider
        .rotate(&KeyMaterial::from(strong_key()))
        .await
        .expect("rotate")
        .id;
    let versions = provider.fetch().await.unwrap();
    assert_eq!(find(&versions, &v2).stage, Some(Stage::Pending), "{versions:?}");
    assert_eq!(find(&versions, &v1).stage, Some(Stage::Current), "{versions:?}");

    provider.promote(&v2).await.expect("promote");
    let versions = provider.fetch().await.unwrap();
    assert_eq!(find(&versions, &v2).stage, Some(Stage::Current), "{versions:?}");
    assert_eq!(find(&versions, &v1).stage, Some(Stage::Previous), "{versions:?}");

    tokio::time::sleep(Duration::from_millis(1100)).await; // AWS keeps creation times in seconds
    let v3 = provider
        .rotate(&KeyMaterial::from(strong_key()))
        .await
        .expect("rotate")
        .id;
    provider.promote(&v3).await.expect("promote");
    let versions = provider.fetch().await.unwrap();
    assert_eq!(find(&versions, &v3).stage, Some(Stage::Current), "{versions:?}");
    assert_eq!(find(&versions, &v2).stage, Some(Stage::Previous), "{versions:?}");
    let deprecated = find(&versions, &v1);
    assert_eq!(
        deprecated.stage, None,
        "a version without labels is deprecated: {versions:?}"
    );
    assert!(
        deprecated.created.is_some(),
        "deprecated versions keep their creation time"
    );
    assert_eq!(versions[0].id, v3, "newest first: {versions:?}");
    let times: Vec<_> = versions.iter().map(|v| v.created.expect("created")).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first by creation: {versions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_takes_pending_off_so_no_rotation_looks_in_progress() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("promote");
    let client = admin(&moto);
    let v1 = create(&client, &secret, &strong_key(), None).await;
    let provider = provider(&moto, &secret);
    let published = provider.rotate(&KeyMaterial::from(strong_key())).await.unwrap();
    assert!(published.created.is_some(), "rotate reports the creation time");
    provider.promote(&published.id).await.unwrap();

    let described = client.describe_secret().secret_id(&secret).send().await.unwrap();
    let stages = described.version_ids_to_stages().unwrap();
    assert_eq!(stages[&published.id], vec!["AWSCURRENT".to_owned()], "{stages:?}");
    assert_eq!(stages[&v1], vec!["AWSPREVIOUS".to_owned()], "{stages:?}");
    assert!(
        !stages.values().flatten().any(|label| label == "AWSPENDING"),
        "AWSPENDING is attached to no version: {stages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_promote_are_picked_up_by_a_running_keyring() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("live");
    let v1 = create(&admin(&moto), &secret, &strong_key(), None).await;
    let running = refresher(provider(&moto, &secret), policy()).await;
    let signer = Signer::new(running.keyring().clone()).with_salt("live");
    let before = signer.sign("signed by v1").unwrap();
    assert_eq!(signing_id(&running), v1);

    // `keyroll rotate --keys aws-sm://…` from another process: its own provider.
    let operator = provider(&moto, &secret);
    let v2 = operator
        .rotate(&KeyMaterial::from(strong_key()))
        .await
        .unwrap()
        .id;
    wait_until("the pending key verifies", || {
        role_of(&running, &v2) == Some(Role::Pending)
    })
    .await;
    assert_eq!(signing_id(&running), v1, "a pending key never signs");

    operator.promote(&v2).await.unwrap();
    wait_until("the promoted key signs", || signing_id(&running) == v2).await;
    let verified = signer
        .verify(&before)
        .expect("a token of the previous key still verifies");
    assert_eq!(&*verified.key.id, v1.as_str());
    assert!(verified.needs_resign());
    assert_eq!(
        &*signer.verify(&signer.sign("new").unwrap()).unwrap().key.id,
        v2.as_str()
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rotations_in_quick_succession_keep_tokens_of_the_first_key_valid() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("quick");
    let client = admin(&moto);
    let v1 = create(&client, &secret, &strong_key(), None).await;
    let running = refresher(provider(&moto, &secret), policy()).await;
    let signer = Signer::new(running.keyring().clone()).with_salt("quick");
    let first = signer.sign("signed by the first key").unwrap();

    let v2 = put(&client, &secret, &strong_key()).await;
    wait_until("the second key signs", || signing_id(&running) == v2).await;
    let second = signer.sign("signed by the second key").unwrap();
    let v3 = put(&client, &secret, &strong_key()).await;
    wait_until("the third key signs", || signing_id(&running) == v3).await;

    // v1 has lost every label now (deprecated), and still verifies: the
    // fallback window counts from when v2 superseded it.
    let versions = provider(&moto, &secret).fetch().await.unwrap();
    assert_eq!(find(&versions, &v1).stage, None, "{versions:?}");
    assert_eq!(
        &*signer.verify(&first).expect("first key verifies").key.id,
        v1.as_str()
    );
    assert_eq!(
        &*signer.verify(&second).expect("second key verifies").key.id,
        v2.as_str()
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_current_version_only_verifies_during_the_activation_delay() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("delay");
    let client = admin(&moto);
    let v1 = create(&client, &secret, &strong_key(), None).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let delay = Duration::from_secs(5);
    let running = refresher(provider(&moto, &secret), policy().with_activation_delay(delay)).await;
    // A rotation Lambda's createSecret + finishSecret: AWSCURRENT at once.
    let v2 = put(&client, &secret, &strong_key()).await;
    wait_until("the new current key is known", || {
        role_of(&running, &v2).is_some()
    })
    .await;
    assert_eq!(
        role_of(&running, &v2),
        Some(Role::Pending),
        "held verify-only first"
    );
    assert_eq!(
        signing_id(&running),
        v1,
        "the previous key keeps signing meanwhile"
    );
    wait_until("the new key signs after the delay", || signing_id(&running) == v2).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_secret_costs_one_call_per_refresh() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("calls");
    let client = admin(&moto);
    create(&client, &secret, &strong_key(), None).await;
    put(&client, &secret, &strong_key()).await;
    let provider = provider(&moto, &secret);

    provider.fetch().await.unwrap();
    assert_eq!(
        provider.api_calls(),
        1 + 1 + 2,
        "first fetch: DescribeSecret, ListSecretVersionIds, GetSecretValue per version"
    );
    for _ in 0..5 {
        let before = provider.api_calls();
        provider.fetch().await.unwrap();
        assert_eq!(provider.api_calls() - before, 1, "unchanged: DescribeSecret only");
    }

    put(&client, &secret, &strong_key()).await;
    let before = provider.api_calls();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(
        provider.api_calls() - before,
        3,
        "changed: DescribeSecret, ListSecretVersionIds, GetSecretValue of the new version only"
    );
}
