//! `keyroll::open`: one URI syntax for every provider, and clear errors for
//! schemes that are unknown or not compiled in.

use std::time::Duration;

use keyroll::{ProviderErrorKind, Refresher, Signer};

#[test]
fn every_local_scheme_opens_and_names_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!("file://{}/keys", dir.path().display());
    for (uri, source) in [
        ("env://KEYROLL_OPEN_TEST", "env://KEYROLL_OPEN_TEST"),
        (file.as_str(), file.as_str()),
        ("docker://app_key?root=/run/secrets", "docker://app_key"),
    ] {
        let provider = keyroll::open(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert!(
            provider.source().starts_with(source),
            "{uri} -> {}",
            provider.source()
        );
    }
}

#[test]
fn an_unknown_scheme_lists_the_known_ones() {
    let err = keyroll::open("s3://bucket/key").unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Config);
    let message = err.to_string();
    assert!(message.contains("unknown key source scheme `s3://`"), "{message}");
    for scheme in [
        "env://",
        "file://",
        "docker://",
        "vault://",
        "aws-sm://",
        "gcp-sm://",
    ] {
        assert!(message.contains(scheme), "{message}");
    }
}

#[test]
fn a_scheme_whose_feature_is_off_names_the_feature() {
    let off: Vec<(&str, &str)> = [
        (
            "vault://127.0.0.1:8200/secret/app",
            "vault",
            cfg!(feature = "vault"),
        ),
        ("aws-sm://app", "aws", cfg!(feature = "aws")),
        ("gcp-sm://projects/p/secrets/s", "gcp", cfg!(feature = "gcp")),
    ]
    .into_iter()
    .filter(|(_, _, on)| !on)
    .map(|(uri, feature, _)| (uri, feature))
    .collect();
    for (uri, feature) in off {
        let err = keyroll::open(uri).unwrap_err();
        assert_eq!(err.kind(), ProviderErrorKind::Config);
        assert!(
            err.to_string().contains(&format!("the `{feature}` feature")),
            "{err}"
        );
    }
}

#[test]
fn a_path_without_scheme_is_refused_with_an_example() {
    let err = keyroll::open("/etc/keys").unwrap_err();
    assert!(err.to_string().contains("file:///etc/keyroll/keys"), "{err}");
}

#[tokio::test]
async fn a_service_follows_a_rotation_through_the_facade_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let old = "facade-test-key-one-0123456789abcdefghijklmnop";
    std::fs::write(&path, format!("{old}\n")).unwrap();
    let refresher = Refresher::builder(keyroll::open(&format!("file://{}", path.display())).unwrap())
        .interval(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let signer = Signer::new(refresher.keyring().clone()).with_salt("facade");
    let token = signer.sign("v");
    let mut changes = refresher.keyring().subscribe();
    let staging = dir.path().join("keys.tmp");
    std::fs::write(
        &staging,
        format!("facade-test-key-two-0123456789abcdefghijklmnop\n{old}\n"),
    )
    .unwrap();
    std::fs::rename(&staging, &path).unwrap();
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("the file watch applies the change")
        .unwrap();
    let verified = signer.verify(&token).unwrap();
    assert!(verified.needs_resign());
    assert!(!signer.verify(&signer.sign("v")).unwrap().needs_resign());
    refresher.shutdown().await;
}
