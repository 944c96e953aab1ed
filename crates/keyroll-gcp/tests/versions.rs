//! What the provider reports: states, creation times, ids, every page, only
//! the payloads it does not hold yet, checksums verified, errors classified.

mod common;

use common::{accesses, provider, refresher, server_with};
use keyroll_core::{FromSource, Health, KeyProvider, KeyState, ProviderErrorKind, Signer};
use keyroll_testkit::conformance::{signs_with, strong_key};
use keyroll_testkit::gcp::VersionState;
use keyroll_testkit::wait_until;

const SECRET: &str = "projects/keyroll-test/secrets/app-key";

#[tokio::test(flavor = "multi_thread")]
async fn disabled_and_destroyed_versions_are_reported_with_their_state_and_never_accessed() {
    let server = server_with(SECRET).await;
    let keys: Vec<String> = (0..4).map(|_| strong_key()).collect();
    let names: Vec<String> = keys
        .iter()
        .map(|k| server.add_version(SECRET, k.as_bytes()))
        .collect();
    server.set_state(&names[0], VersionState::Destroyed);
    server.set_state(&names[2], VersionState::Disabled);

    let versions = provider(&server, SECRET).fetch().await.unwrap();

    let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["4", "3", "2", "1"], "newest first, ids are version numbers");
    let states: Vec<KeyState> = versions.iter().map(|v| v.state).collect();
    assert_eq!(
        states,
        [
            KeyState::Enabled,
            KeyState::Disabled,
            KeyState::Enabled,
            KeyState::Destroyed
        ]
    );
    assert_eq!(versions[0].material.expose_secret(), keys[3].as_bytes());
    assert_eq!(versions[2].material.expose_secret(), keys[1].as_bytes());
    assert!(versions[1].material.is_empty() && versions[3].material.is_empty());
    assert!(
        versions.iter().all(|v| v.created.is_some()),
        "createTime is reported"
    );
    assert_eq!(
        accesses(&server),
        [
            format!("GET /v1/{SECRET}/versions/4:access"),
            format!("GET /v1/{SECRET}/versions/2:access")
        ],
        "only enabled versions are accessed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_version_is_not_accessed_again_but_a_re_enabled_one_is() {
    let server = server_with(SECRET).await;
    let first = server.add_version(SECRET, strong_key().as_bytes());
    let provider = provider(&server, SECRET);
    provider.fetch().await.unwrap();
    provider.fetch().await.unwrap();
    assert_eq!(accesses(&server).len(), 1, "the second fetch lists only");

    server.add_version(SECRET, strong_key().as_bytes());
    provider.fetch().await.unwrap();
    assert_eq!(accesses(&server).len(), 2, "only the new version is accessed");

    server.set_state(&first, VersionState::Disabled);
    provider.fetch().await.unwrap();
    server.set_state(&first, VersionState::Enabled);
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[1].state, KeyState::Enabled);
    assert_eq!(
        accesses(&server).last().unwrap(),
        &format!("GET /v1/{first}:access"),
        "a disabled version's payload is dropped, and fetched again once re-enabled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_on_more_than_one_page_are_all_reported() {
    let server = server_with(SECRET).await;
    server.set_max_page_size(3);
    let keys: Vec<String> = (0..8).map(|_| strong_key()).collect();
    for key in &keys {
        server.add_version(SECRET, key.as_bytes());
    }
    let provider = provider(&server, SECRET);
    // A policy that uses all eight (the default uses six).
    let versions = provider.fetch_newest(8).await.unwrap();
    let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["8", "7", "6", "5", "4", "3", "2", "1"]);
    for (version, key) in versions.iter().zip(keys.iter().rev()) {
        assert_eq!(version.material.expose_secret(), key.as_bytes());
    }
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.ends_with("/versions"))
        .count();
    assert_eq!(lists, 3, "8 versions at 3 a page take 3 list calls");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payload_whose_checksum_does_not_match_is_refused_and_the_last_good_keys_kept() {
    let server = server_with(SECRET).await;
    let good = strong_key();
    server.add_version(SECRET, good.as_bytes());
    let refresher = refresher(provider(&server, SECRET)).await;
    let signer = Signer::new(refresher.keyring().clone());
    let token = signer.sign("before").unwrap();

    let corrupted = server.add_version(SECRET, strong_key().as_bytes());
    server.corrupt_checksum(&corrupted);
    wait_until("the refresher reports the bad checksum", || {
        refresher.status().health == Health::Degraded
    })
    .await;
    let status = refresher.status();
    let error = status.last_error.clone().unwrap();
    assert!(error.contains("dataCrc32c"), "{error}");
    assert!(error.contains("versions/2"), "{error}");
    assert!(signs_with(&refresher, &good), "the last good key keeps signing");
    assert_eq!(signer.verify(&token).unwrap().value, "before");

    let direct = provider(&server, SECRET).fetch().await.unwrap_err();
    assert_eq!(direct.kind(), ProviderErrorKind::Invalid);
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn permission_denied_is_reported_as_such_for_list_and_for_access() {
    let server = server_with(SECRET).await;
    server.add_version(SECRET, strong_key().as_bytes());

    server.deny("secretmanager.versions.access", SECRET);
    let error = provider(&server, SECRET).fetch().await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::PermissionDenied, "{error}");
    assert!(
        error.to_string().contains("secretmanager.versions.access"),
        "{error}"
    );
    assert!(
        error.to_string().contains("secretAccessor"),
        "says how to fix: {error}"
    );

    server.allow_all();
    server.deny("secretmanager.versions.list", SECRET);
    let error = provider(&server, SECRET).fetch().await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::PermissionDenied, "{error}");

    server.allow_all();
    assert!(provider(&server, SECRET).fetch().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_is_not_found() {
    let server = server_with(SECRET).await;
    let error = provider(&server, "projects/keyroll-test/secrets/nope")
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::NotFound, "{error}");
    assert!(
        error.to_string().contains("projects/keyroll-test/secrets/nope"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_without_versions_is_invalid_as_in_every_store() {
    let server = server_with(SECRET).await;
    let error = provider(&server, SECRET).fetch().await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("has no versions"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gcp_sm_uri_with_an_endpoint_reads_a_regional_secret() {
    let server = server_with("projects/p/locations/us-east1/secrets/s").await;
    let key = strong_key();
    server.add_version("projects/p/locations/us-east1/secrets/s", key.as_bytes());
    let uri = format!(
        "gcp-sm://projects/p/locations/us-east1/secrets/s?endpoint={}",
        server.endpoint()
    );
    let provider =
        keyroll_gcp::GcpProvider::from_source(&keyroll_core::KeySource::parse(&uri).unwrap()).unwrap();
    assert_eq!(provider.source(), uri);
    assert_eq!(provider.reach(), keyroll_core::Reach::Shared);
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());
}
