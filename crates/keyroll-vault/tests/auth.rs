//! Authentication against a real OpenBao dev server: AppRole, token files,
//! renewal before expiry, new logins at the maximum TTL and after a 403.

mod common;

use std::time::Duration;

use common::{builder, put, read_only_policy, token};
use keyroll_core::{FromSource, KeyMaterial, KeyProvider, ProviderErrorKind};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider};

/// Enables AppRole with a role `app` whose tokens may only read
/// `secret/app`, with the given token TTLs, and returns (role id, secret id).
fn app_role(bao: &OpenBao, ttl: &str, max_ttl: &str) -> (String, String) {
    bao.bao(&["auth", "enable", "approle"]);
    read_only_policy(bao, "app-read", "app");
    bao.bao(&[
        "write",
        "auth/approle/role/app",
        "token_policies=app-read",
        &format!("token_ttl={ttl}"),
        &format!("token_max_ttl={max_ttl}"),
    ]);
    let role_id = bao.bao(&["read", "-field=role_id", "auth/approle/role/app/role-id"]);
    let secret_id = bao.bao(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/app/secret-id",
    ]);
    (role_id.trim().to_owned(), secret_id.trim().to_owned())
}

/// A provider for `secret/app`, which gets a strong key, logging in with
/// the AppRole of [`app_role`] by value.
fn app_role_provider(bao: &OpenBao, ttl: &str, max_ttl: &str) -> VaultProvider {
    put(bao, "app", &strong_key());
    let (role_id, secret_id) = app_role(bao, ttl, max_ttl);
    builder(bao, "app")
        .auth(Auth::app_role(
            Credential::value(role_id),
            Credential::value(secret_id),
        ))
        .build()
        .unwrap()
}

/// How many logins the AppRole method has served.
fn logins(bao: &OpenBao) -> usize {
    bao.requests_for("auth/approle/login")
}

#[tokio::test(flavor = "multi_thread")]
async fn app_role_login_with_a_read_only_policy_reads_but_cannot_rotate() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    put(&bao, "app", &key);
    let (role_id, secret_id) = app_role(&bao, "1h", "4h");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret-id"), format!("{secret_id}\n")).unwrap();
    let provider = builder(&bao, "app")
        .auth(Auth::app_role(
            Credential::value(role_id.clone()),
            Credential::file(dir.path().join("secret-id")),
        ))
        .build()
        .unwrap();

    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());
    provider.fetch().await.unwrap();
    assert_eq!(logins(&bao), 1, "one login serves many fetches");

    let err = provider
        .rotate(&KeyMaterial::from(strong_key()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied, "{err}");
    assert_eq!(
        logins(&bao),
        2,
        "a 403 triggers exactly one new login before it is reported"
    );

    let shown = format!("{provider:?} {err}");
    assert!(
        !shown.contains(&role_id) && !shown.contains(&secret_id),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_id_is_permission_denied_and_says_so() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    let (role_id, _) = app_role(&bao, "1h", "4h");
    let provider = builder(&bao, "app")
        .auth(Auth::app_role(
            Credential::value(role_id),
            Credential::value("00000000-0000-0000-0000-000000000000"),
        ))
        .build()
        .unwrap();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("AppRole login"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn app_role_settings_come_from_the_uri() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    put(&bao, "app", &key);
    let (role_id, secret_id) = app_role(&bao, "1h", "4h");
    let dir = tempfile::tempdir().unwrap();
    let (role_file, secret_file) = (dir.path().join("role-id"), dir.path().join("secret-id"));
    std::fs::write(&role_file, role_id).unwrap();
    std::fs::write(&secret_file, secret_id).unwrap();
    let uri = format!(
        "vault://127.0.0.1:{}/secret/app?tls=false&auth=approle&role_id_file={}&secret_id_file={}",
        bao.port(),
        role_file.display(),
        secret_file.display()
    );
    let provider = VaultProvider::from_uri(&uri).unwrap();
    assert_eq!(
        provider.fetch().await.unwrap()[0].material.expose_secret(),
        key.as_bytes()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_lived_token_is_renewed_before_it_expires() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    read_only_policy(&bao, "app-read", "app");
    let token = token(&bao, "app-read", &["-ttl=3s", "-explicit-max-ttl=1h"]);
    let provider = builder(&bao, "app")
        .auth(Auth::token(Credential::value(token.clone())))
        .build()
        .unwrap();
    provider.fetch().await.unwrap();
    // Well past the original TTL: only renewals kept it alive.
    tokio::time::sleep(Duration::from_secs(7)).await;
    provider
        .fetch()
        .await
        .expect("the token was renewed in the background");
    assert!(
        bao.requests_for("auth/token/renew-self") >= 2,
        "renewed before each expiry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn app_role_logs_in_again_when_the_token_reaches_its_max_ttl() {
    let Some(bao) = OpenBao::start() else { return };
    let provider = app_role_provider(&bao, "2s", "4s");
    provider.fetch().await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        provider
            .fetch()
            .await
            .expect("a fresh login replaced the capped token");
    }
    assert!(logins(&bao) >= 2, "logged in again at the max TTL");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_login_token_is_replaced_by_one_new_login() {
    let Some(bao) = OpenBao::start() else { return };
    let provider = app_role_provider(&bao, "1h", "4h");
    provider.fetch().await.unwrap();
    bao.bao(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    provider.fetch().await.expect("a new login after the 403");
    assert_eq!(logins(&bao), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_file_is_read_again_when_it_changes() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    read_only_policy(&bao, "app-read", "app");
    let first = token(&bao, "app-read", &[]);
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("agent-token");
    std::fs::write(&sink, &first).unwrap();
    let provider = builder(&bao, "app")
        .auth(Auth::token(Credential::file(&sink)))
        .build()
        .unwrap();
    provider.fetch().await.unwrap();

    bao.bao(&["token", "revoke", &first]);
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied, "{err}");

    // The agent writes a new token to its sink.
    std::fs::write(&sink, token(&bao, "app-read", &[])).unwrap();
    provider
        .fetch()
        .await
        .expect("the new token from the file is used");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_is_a_config_error_that_names_the_variable() {
    let Some(bao) = OpenBao::start() else { return };
    let provider = builder(&bao, "app")
        .auth(Auth::token(Credential::env("KEYROLL_TEST_UNSET_TOKEN_VARIABLE")))
        .build()
        .unwrap();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("KEYROLL_TEST_UNSET_TOKEN_VARIABLE"),
        "{err}"
    );
}
