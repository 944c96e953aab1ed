//! `publish_if` against moto's server: writers that read the same newest
//! version derive the same `ClientRequestToken`, so exactly one publishes.

mod common;

use common::{admin, create, provider, unique_name};
use keyroll_core::{KeyMaterial, KeyProvider, ProviderErrorKind};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::moto::Moto;

const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_that_read_the_same_version_publish_exactly_one() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("cas");
    let v1 = create(&admin(&moto), &secret, &strong_key(), None).await;
    assert!(provider(&moto, &secret).capabilities().compare_and_set);

    // Eight hosts, each with its own provider, read the store, then write.
    let writers: Vec<_> = (0..WRITERS).map(|_| provider(&moto, &secret)).collect();
    let mut expected = Vec::new();
    for writer in &writers {
        expected.push(writer.fetch().await.unwrap()[0].id.clone());
    }
    assert!(expected.iter().all(|id| *id == v1));
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|writer| {
            let v1 = v1.clone();
            tokio::spawn(async move {
                writer
                    .publish_if(&KeyMaterial::from(strong_key()), Some(&v1))
                    .await
            })
        })
        .collect();
    let mut published = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(done) => published.push(done.id),
            Err(error) => assert_eq!(error.kind(), ProviderErrorKind::Conflict, "{error}"),
        }
    }
    assert_eq!(published.len(), 1, "exactly one writer publishes: {published:?}");

    let versions = provider(&moto, &secret).fetch().await.unwrap();
    assert_eq!(versions.len(), 2, "one new version: {versions:?}");
    assert!(versions.iter().any(|v| v.id == published[0]));

    // A writer that read the store before that write is refused later too.
    let late = provider(&moto, &secret)
        .publish_if(&KeyMaterial::from(strong_key()), Some(&v1))
        .await
        .expect_err("the version after v1 exists");
    assert_eq!(late.kind(), ProviderErrorKind::Conflict);
    // So is one that expects a secret without versions.
    let first = provider(&moto, &secret)
        .publish_if(&KeyMaterial::from(strong_key()), None)
        .await
        .expect_err("the secret holds versions");
    assert_eq!(first.kind(), ProviderErrorKind::Conflict);
    assert_eq!(provider(&moto, &secret).fetch().await.unwrap().len(), 2);
}
