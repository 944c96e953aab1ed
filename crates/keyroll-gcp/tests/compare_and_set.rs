//! `publish_if` against the Secret Manager server: writers that read the
//! same secret race to claim the next version under its etag, so exactly one
//! publishes.

mod common;

use common::{provider, server_with};
use keyroll_core::{KeyMaterial, KeyProvider, ProviderErrorKind, Published};
use keyroll_gcp::{CLAIM, CLAIM_TTL};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::gcp::SecretManagerServer;

const SECRET: &str = "projects/keyroll-test/secrets/app-key";
const WRITERS: usize = 8;

/// `WRITERS` hosts, each with its own provider (and client), publish over
/// `expected` at once; returns what each published.
async fn race(server: &SecretManagerServer, expected: Option<&str>) -> Vec<Published> {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let writer = provider(server, SECRET);
            let expected = expected.map(str::to_owned);
            tokio::spawn(async move {
                writer
                    .publish_if(&KeyMaterial::from(strong_key()), expected.as_deref())
                    .await
            })
        })
        .collect();
    let mut published = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(done) => published.push(done),
            Err(error) => assert_eq!(error.kind(), ProviderErrorKind::Conflict, "{error}"),
        }
    }
    published
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_that_read_the_same_version_publish_exactly_one() {
    let server = server_with(SECRET).await;
    server.add_version(SECRET, strong_key().as_bytes());
    assert!(provider(&server, SECRET).capabilities().compare_and_set);
    assert_eq!(provider(&server, SECRET).fetch().await.unwrap()[0].id, "1");

    let published = race(&server, Some("1")).await;
    assert_eq!(published.len(), 1, "exactly one writer publishes: {published:?}");
    assert_eq!(published[0].id, "2");
    assert!(published[0].created.is_some());
    let versions = provider(&server, SECRET).fetch().await.unwrap();
    assert_eq!(versions.len(), 2, "one new version: {versions:?}");
    assert_eq!(versions[0].id, "2");
    assert!(
        server.annotations(SECRET)[CLAIM].starts_with("after=1;"),
        "the winner's claim stays on the secret"
    );

    // A writer that read the store before that write is refused later too.
    let late = provider(&server, SECRET)
        .publish_if(&KeyMaterial::from(strong_key()), Some("1"))
        .await
        .expect_err("version 2 exists");
    assert_eq!(late.kind(), ProviderErrorKind::Conflict);
    // So is one that expects an empty store.
    let empty = provider(&server, SECRET)
        .publish_if(&KeyMaterial::from(strong_key()), None)
        .await
        .expect_err("the secret holds versions");
    assert_eq!(empty.kind(), ProviderErrorKind::Conflict);
    assert_eq!(provider(&server, SECRET).fetch().await.unwrap().len(), 2);

    // The next period: the old claim over version 1 does not block it.
    assert_eq!(race(&server, Some("2")).await.len(), 1);
    assert_eq!(provider(&server, SECRET).fetch().await.unwrap()[0].id, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_on_a_missing_secret_create_it_once_and_publish_one_version() {
    let server = SecretManagerServer::start().await;
    let published = race(&server, None).await;
    assert_eq!(published.len(), 1, "exactly one writer publishes: {published:?}");
    let versions = provider(&server, SECRET).fetch().await.unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0].id, published[0].id);
    let creates = server
        .requests()
        .iter()
        .filter(|r| *r == "POST /v1/projects/keyroll-test/secrets")
        .count();
    assert!(creates >= 1, "the secret was created through the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_on_a_secret_without_versions_publish_one() {
    let server = server_with(SECRET).await;
    let published = race(&server, None).await;
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(provider(&server, SECRET).fetch().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_claim_holds_writers_off_and_a_lapsed_one_does_not() {
    let server = server_with(SECRET).await;
    server.add_version(SECRET, strong_key().as_bytes());
    let writer = provider(&server, SECRET);

    // A writer claimed version 1's successor a minute ago and has not added it.
    server.set_annotation(SECRET, CLAIM, &format!("after=1;at={}", now() - 60));
    let held = writer
        .publish_if(&KeyMaterial::from(strong_key()), Some("1"))
        .await
        .expect_err("the claim holds");
    assert_eq!(held.kind(), ProviderErrorKind::Conflict);
    assert_eq!(writer.fetch().await.unwrap().len(), 1, "nothing was written");

    // That writer crashed: once its claim is older than the bound, it lapses.
    let lapsed = now() - CLAIM_TTL.as_secs() - 1;
    server.set_annotation(SECRET, CLAIM, &format!("after=1;at={lapsed}"));
    server.set_annotation(SECRET, "owner", "team-a");
    let published = writer
        .publish_if(&KeyMaterial::from(strong_key()), Some("1"))
        .await
        .expect("a lapsed claim is taken over");
    assert_eq!(published.id, "2");
    let annotations = server.annotations(SECRET);
    assert_eq!(annotations["owner"], "team-a", "other annotations are kept");
    assert_ne!(annotations[CLAIM], format!("after=1;at={lapsed}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_update_permission_nothing_is_written() {
    let server = server_with(SECRET).await;
    server.add_version(SECRET, strong_key().as_bytes());
    server.deny("secretmanager.secrets.update", SECRET);
    let writer = provider(&server, SECRET);
    let error = writer
        .publish_if(&KeyMaterial::from(strong_key()), Some("1"))
        .await
        .expect_err("the claim is refused");
    assert_eq!(error.kind(), ProviderErrorKind::PermissionDenied, "{error}");
    assert_eq!(writer.fetch().await.unwrap().len(), 1);
}
