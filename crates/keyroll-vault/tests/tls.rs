//! HTTPS to a real OpenBao dev server whose certificate comes from a private CA.

mod common;

use common::{MOUNT, put};
use keyroll_core::{FromSource, KeyProvider, ProviderErrorKind};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider};

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_custom_ca_reads_keys_from_the_uri() {
    let Some(bao) = OpenBao::start_tls() else { return };
    let key = strong_key();
    put(&bao, "app", &key);
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), bao.root_token()).unwrap();
    let uri = format!(
        "vault://127.0.0.1:{}/{MOUNT}/app?ca_cert={}&token_file={}",
        bao.port(),
        bao.ca_cert().unwrap().display(),
        token_file.path().display()
    );
    let provider = VaultProvider::from_uri(&uri).unwrap();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());
    assert!(!provider.source().contains("tls=false"), "{}", provider.source());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let Some(bao) = OpenBao::start_tls() else { return };
    put(&bao, "app", &strong_key());
    let provider = VaultProvider::builder()
        .address(bao.address())
        .secret(MOUNT, "app")
        .auth(Auth::token(Credential::value(bao.root_token())))
        .build()
        .unwrap();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "names the cause: {err}"
    );
}

#[test]
fn an_unreadable_ca_file_is_a_config_error() {
    let err = VaultProvider::builder()
        .address("https://127.0.0.1:8200")
        .secret(MOUNT, "app")
        .ca_cert("/nonexistent/ca.pem")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Config, "{err}");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
