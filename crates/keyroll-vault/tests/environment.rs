//! The vault CLI's environment conventions, in a test binary of their own
//! because they change the process environment.

mod common;

use common::put;
use keyroll_core::{FromSource, KeyProvider};
use keyroll_testkit::conformance::{set_env_var, strong_key};
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::VaultProvider;

#[tokio::test(flavor = "multi_thread")]
async fn a_uri_without_host_takes_address_and_token_from_vault_addr_and_vault_token() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    put(&bao, "app", &key);
    // The only test in this binary: nothing else reads these variables.
    set_env_var("VAULT_ADDR", &bao.address());
    set_env_var("VAULT_TOKEN", bao.root_token());
    let provider = VaultProvider::from_uri("vault:///secret/app").unwrap();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());
    assert_eq!(
        provider.source(),
        format!("vault://127.0.0.1:{}/secret/app?field=key&tls=false", bao.port())
    );
    vault_addr_over_plain_http_to_another_host_or_with_user_info_is_refused();
}

/// VAULT_ADDR over plain http:// to another host, or with user info, is
/// refused (never echoed); `?insecure_http=true` allows the former. Called
/// by the test above: one test per binary sets the environment.
fn vault_addr_over_plain_http_to_another_host_or_with_user_info_is_refused() {
    let open = |uri: &str| VaultProvider::from_uri(uri);
    set_env_var("VAULT_TOKEN", "unused");
    set_env_var("VAULT_ADDR", "http://vault.internal:8200");
    let error = open("vault:///secret/app").unwrap_err();
    assert!(error.to_string().contains("insecure_http=true"), "{error}");
    let provider = open("vault:///secret/app?insecure_http=true").unwrap();
    assert!(
        provider.source().contains("insecure_http=true"),
        "{}",
        provider.source()
    );
    set_env_var("VAULT_ADDR", "https://user:pa55word@vault.internal:8200");
    let error = open("vault:///secret/app").unwrap_err();
    assert!(!format!("{error} {error:?}").contains("pa55word"), "{error}");
}
