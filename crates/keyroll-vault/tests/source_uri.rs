//! `source()` is a `vault://` URI that reads back to the same secret, whatever
//! characters the address, mount, path, field and namespace hold.

mod common;

use keyroll_core::{FromSource, KeyProvider, KeySource};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider};

fn reread(shown: &str) -> VaultProvider {
    let source = KeySource::parse(shown).unwrap_or_else(|e| panic!("{shown:?} is not a URI: {e}"));
    VaultProvider::from_source(&source).unwrap_or_else(|e| panic!("{shown:?} does not re-read: {e}"))
}

#[test]
fn source_of_an_ordinary_secret_is_the_uri_people_write() {
    let provider = VaultProvider::builder()
        .address("https://vault.example.com:8200")
        .secret("secret", "myapp/signing")
        .namespace("team-a")
        .auth(Auth::token(Credential::value("t")))
        .build()
        .unwrap();
    assert_eq!(
        provider.source(),
        "vault://vault.example.com:8200/secret/myapp/signing?field=key&namespace=team-a"
    );
    assert_eq!(reread(&provider.source()).source(), provider.source());
}

#[test]
fn source_reads_back_whatever_characters_the_settings_hold() {
    let awkward = [
        "a b",
        "100%",
        "x?y",
        "k&e=y+s",
        "#1",
        "é",
        "%2F",
        "+",
        "=",
        "tab\there",
    ];
    for address in [
        "http://127.0.0.1:8200",
        "https://[::1]:8200",
        "https://vault.example.com/prefix",
        "https://vault.example.com/a%20b?x#y",
    ] {
        for value in awkward {
            let provider = VaultProvider::builder()
                .address(address)
                .secret(format!("kv{value}"), format!("app/{value}/x"))
                .field(value)
                .namespace(value)
                .auth(Auth::token(Credential::value("t")))
                .build()
                .unwrap_or_else(|e| panic!("{address} {value:?}: {e}"));
            let shown = provider.source();
            assert!(shown.starts_with("vault://"), "{shown}");
            assert_eq!(reread(&shown).source(), shown);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_read_back_from_source_reads_the_same_key() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    let (path, field) = ("my app/v+1", "k&e y+s%#?");
    bao.bao(&[
        "kv",
        "put",
        &format!("{}/{path}", common::MOUNT),
        &format!("{field}={key}"),
    ]);
    let provider = common::builder(&bao, path).field(field).build().unwrap();
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), bao.root_token()).unwrap();
    let shown = provider.source();
    let again = reread(&format!("{shown}&token_file={}", token_file.path().display()));
    assert_eq!(again.source(), shown);
    let versions = again.fetch().await.unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());
}
