//! Answers no real OpenBao gives (a lease of 2^64 seconds, version number
//! `u64::MAX`), from the testkit's scripted server, and careless URIs: none
//! may panic, leak a password or send the token in clear to the network. And
//! the policy in use, not the default one, decides how many versions are read.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{builder, put};
use keyroll_core::{FromSource, KeyProvider, ProviderErrorKind};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::endpoints;
use keyroll_testkit::fake::FakeServer;
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider};
use serde_json::{Value, json};

const KEY: &str = "hardening-key-0123456789abcdefghijklmnopqrstuv";
const CREATED: &str = "2026-01-02T03:04:05Z";

/// Vault's answer envelope around `data` (and `auth`).
fn envelope(data: Value, auth: Value) -> String {
    json!({
        "request_id": "r", "lease_id": "", "lease_duration": 0, "renewable": false,
        "data": data, "auth": auth, "warnings": null, "wrap_info": null,
    })
    .to_string()
}

/// An AppRole login granting a token for `lease` seconds.
fn login(lease: u64) -> String {
    envelope(
        Value::Null,
        json!({
            "client_token": "fake-token", "accessor": "a", "policies": [], "token_policies": [],
            "metadata": null, "lease_duration": lease, "renewable": true, "entity_id": "",
            "token_type": "service", "orphan": false,
        }),
    )
}

/// The metadata of a secret whose only version is `version`.
fn metadata(version: u64, created: &str) -> String {
    envelope(
        json!({
            "cas_required": false, "created_time": created, "current_version": version,
            "delete_version_after": "0s", "max_versions": 0, "oldest_version": 0,
            "updated_time": created, "custom_metadata": null,
            "versions": { version.to_string(): { "created_time": created, "deletion_time": "", "destroyed": false } },
        }),
        Value::Null,
    )
}

/// A data-path read of `version` holding `key`.
fn data(version: u64, created: &str, key: &str) -> String {
    envelope(
        json!({
            "data": { "key": key },
            "metadata": { "created_time": created, "deletion_time": "", "custom_metadata": null,
                          "destroyed": false, "version": version },
        }),
        Value::Null,
    )
}

fn app_role(server: &FakeServer) -> VaultProvider {
    VaultProvider::builder()
        .address(server.address())
        .secret("secret", "app")
        .auth(Auth::app_role(
            Credential::value("role"),
            Credential::value("secret-id"),
        ))
        .attempt_timeout(Duration::from_secs(2))
        .metadata_every(u32::MAX)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_of_two_to_the_sixty_four_seconds_is_a_token_that_never_expires_not_a_panic() {
    let server = FakeServer::start(|method, path| match (method, path) {
        ("POST", "/v1/auth/approle/login") => (200, login(u64::MAX)),
        ("GET", "/v1/secret/metadata/app") => (200, metadata(1, CREATED)),
        ("GET", p) if p.starts_with("/v1/secret/data/app") => (200, data(1, CREATED, KEY)),
        _ => (404, r#"{"errors":[]}"#.to_owned()),
    })
    .await;
    let versions = app_role(&server).fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), KEY.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_number_of_u64_max_followed_by_a_recreated_secret_never_panics() {
    let recreated = Arc::new(AtomicBool::new(false));
    let switch = Arc::clone(&recreated);
    let server = FakeServer::start(move |method, path| {
        let (version, created) = if switch.load(Ordering::SeqCst) {
            (1, "2026-02-03T04:05:06Z")
        } else {
            (u64::MAX, CREATED)
        };
        match (method, path) {
            ("POST", "/v1/auth/approle/login") => (200, login(3600)),
            ("GET", "/v1/secret/metadata/app") => (200, metadata(version, created)),
            ("GET", p) if p.starts_with("/v1/secret/data/app") => (200, data(version, created, KEY)),
            _ => (404, r#"{"errors":[]}"#.to_owned()),
        }
    })
    .await;
    let provider = app_role(&server);
    assert_eq!(provider.fetch().await.unwrap()[0].id, u64::MAX.to_string());
    recreated.store(true, Ordering::SeqCst);
    // The newest read finds version 1: not the one after u64::MAX (there is none).
    assert_eq!(provider.fetch().await.unwrap()[0].id, "1");
}

#[test]
fn user_info_in_a_uri_or_address_is_refused_and_never_shown() {
    endpoints::assert_user_info_refused(
        VaultProvider::from_source,
        &[
            "vault://user:pa55word@vault:8200/secret/app",
            "vault://pa55word@127.0.0.1:8200/secret/app?tls=false",
            "vault://user:pa55word@vault:8200/secret/app?regoin=x",
        ],
        "pa55word",
    );
    let error = VaultProvider::builder()
        .address("https://user:pa55word@vault:8200")
        .secret("secret", "app")
        .build()
        .unwrap_err();
    assert!(!format!("{error} {error:?}").contains("pa55word"), "{error}");
}

#[test]
fn plain_http_is_refused_off_this_machine_unless_allowed_and_always_warned_about() {
    endpoints::assert_plaintext_rules(
        VaultProvider::from_source,
        "vault://vault.internal:8200/secret/app?tls=false&token_file=/t",
        &[
            "vault://vault.internal:8200/secret/app?tls=false&insecure_http=true&token_file=/t",
            "vault://127.0.0.1:8200/secret/app?tls=false&token_file=/t",
            "vault://localhost:8200/secret/app?tls=false&token_file=/t",
        ],
        "vault://vault.internal:8200/secret/app?token_file=/t",
        "Vault token",
    );
    let built = VaultProvider::builder()
        .address("http://vault.internal:8200")
        .secret("secret", "app")
        .auth(Auth::token(Credential::value("t")))
        .build();
    assert_eq!(built.unwrap_err().kind(), ProviderErrorKind::Config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_fallbacks_ten_with_twelve_versions_keeps_ten_fallbacks() {
    let Some(bao) = OpenBao::start() else { return };
    // KV v2 keeps 10 versions unless told otherwise.
    bao.bao(&["kv", "metadata", "put", "-max-versions=20", "secret/many"]);
    for _ in 0..12 {
        put(&bao, "many", &strong_key());
    }
    let counts = keyroll_testkit::fallbacks_by_policy(|| builder(&bao, "many").build().unwrap()).await;
    assert_eq!(counts, [10, keyroll_core::DEFAULT_MAX_FALLBACKS]);
}

#[test]
fn zero_max_versions_metadata_every_or_timeout_is_an_error_as_on_the_other_stores() {
    let builder = || {
        VaultProvider::builder()
            .address("https://vault.internal:8200")
            .secret("secret", "app")
            .auth(Auth::token(Credential::value("t")))
    };
    for built in [
        builder().max_versions(0).build(),
        builder().metadata_every(0).build(),
        builder().attempt_timeout(Duration::ZERO).build(),
    ] {
        assert_eq!(built.unwrap_err().kind(), ProviderErrorKind::Config);
    }
}
