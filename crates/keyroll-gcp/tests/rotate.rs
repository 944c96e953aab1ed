//! `keyroll rotate` against Secret Manager: a new version added with a
//! checksum, picked up by running keyrings; retired versions disabled.

mod common;

use common::{provider, refresher, server_with};
use keyroll_core::{KeyMaterial, KeyProvider, KeyState, ProviderErrorKind, Signer, VerifyError};
use keyroll_testkit::conformance::{signs_with, strong_key};
use keyroll_testkit::wait_until;

const SECRET: &str = "projects/keyroll-test/secrets/app-key";

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_is_picked_up_by_a_running_keyring() {
    let server = server_with(SECRET).await;
    let first = strong_key();
    server.add_version(SECRET, first.as_bytes());
    let refresher = refresher(provider(&server, SECRET)).await;
    let signer = Signer::new(refresher.keyring().clone());
    let before = signer.sign("before").unwrap();

    let second = strong_key();
    let published = provider(&server, SECRET)
        .rotate(&KeyMaterial::from(second.as_str()))
        .await
        .unwrap();
    assert_eq!(published.id, "2");
    assert!(published.created.is_some());
    assert!(
        server
            .requests()
            .contains(&format!("POST /v1/{SECRET}:addVersion")),
        "rotate adds a version"
    );

    wait_until("the new version signs", || signs_with(&refresher, &second)).await;
    assert!(signer.verify(&before).unwrap().needs_resign());
    assert_eq!(
        &*signer.verify(&signer.sign("after").unwrap()).unwrap().key.id,
        "2"
    );
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_sends_a_checksum_the_server_verifies() {
    let server = server_with(SECRET).await;
    provider(&server, SECRET)
        .rotate(&KeyMaterial::from(strong_key().as_str()))
        .await
        .unwrap();
    let response = http_get(&server.endpoint(), &format!("/v1/{SECRET}/versions/1")).await;
    assert!(
        response.contains("\"clientSpecifiedPayloadChecksum\":true"),
        "the version records that the client sent a checksum: {response}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_retired_version_revokes_it() {
    let server = server_with(SECRET).await;
    let (old, new) = (strong_key(), strong_key());
    server.add_version(SECRET, old.as_bytes());
    let refresher = refresher(provider(&server, SECRET)).await;
    let signer = Signer::new(refresher.keyring().clone());
    let token = signer.sign("old").unwrap();
    let store = provider(&server, SECRET);
    store.rotate(&KeyMaterial::from(new.as_str())).await.unwrap();
    wait_until("the new version signs", || signs_with(&refresher, &new)).await;

    store.disable("1").await.unwrap();
    let versions = store.fetch().await.unwrap();
    assert_eq!(versions[1].id, "1");
    assert_eq!(versions[1].state, KeyState::Disabled);
    wait_until("the disabled version stops verifying", || {
        signer.verify(&token) == Err(VerifyError::UnknownKey)
    })
    .await;
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_missing_or_malformed_version_fails_clearly() {
    let server = server_with(SECRET).await;
    let store = provider(&server, SECRET);
    let missing = store.disable("9").await.unwrap_err();
    assert_eq!(missing.kind(), ProviderErrorKind::NotFound, "{missing}");
    let malformed = store.disable("latest").await.unwrap_err();
    assert_eq!(malformed.kind(), ProviderErrorKind::Config, "{malformed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_without_permission_is_permission_denied() {
    let server = server_with(SECRET).await;
    server.deny("secretmanager.versions.add", SECRET);
    let error = provider(&server, SECRET)
        .rotate(&KeyMaterial::from(strong_key().as_str()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::PermissionDenied, "{error}");
}

/// A GET over a bare TCP stream (HTTP/1.0), the body as text.
async fn http_get(endpoint: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}
