//! What the Docker secrets provider reads and refuses, in a temporary secrets
//! directory.

use std::path::Path;
use std::time::{Duration, Instant};

use keyroll_core::{FromSource, KeyMaterial, KeyProvider, KeyState, Policy, ProviderErrorKind, Refresher};
use keyroll_docker::DockerProvider;
use keyroll_testkit::conformance::{self, strong_key};

fn provider(root: &Path, uri_params: &str) -> DockerProvider {
    let uri = format!("docker://app_key?root={}{uri_params}", root.display());
    DockerProvider::from_uri(&uri).unwrap()
}

fn keys(versions: &[keyroll_core::KeyVersion]) -> Vec<&[u8]> {
    versions.iter().map(|v| v.material.expose_secret()).collect()
}

#[tokio::test]
async fn a_secret_of_several_lines_gives_the_signing_key_then_fallbacks() {
    let root = tempfile::tempdir().unwrap();
    let (new, old) = (strong_key(), strong_key());
    std::fs::write(root.path().join("app_key"), format!("{new}\n# previous\n{old}\n")).unwrap();
    let versions = provider(root.path(), "").fetch().await.unwrap();
    assert_eq!(keys(&versions), [new.as_bytes(), old.as_bytes()]);
    assert_eq!(versions[0].id, KeyMaterial::from(new.as_str()).fingerprint());
}

#[tokio::test]
async fn fallback_secrets_follow_the_main_secret_in_the_order_named() {
    let root = tempfile::tempdir().unwrap();
    let (new, previous, older, oldest) = (strong_key(), strong_key(), strong_key(), strong_key());
    std::fs::write(root.path().join("app_key"), format!("{new}\n{previous}\n")).unwrap();
    // The previous key handed over both ways counts once.
    std::fs::write(root.path().join("app_key_v2"), format!("{previous}\n{older}\n")).unwrap();
    std::fs::write(root.path().join("app_key_v1"), format!("{oldest}\n")).unwrap();
    let versions = provider(root.path(), "&fallbacks=app_key_v2,app_key_v1")
        .fetch()
        .await
        .unwrap();
    assert_eq!(
        keys(&versions),
        [
            new.as_bytes(),
            previous.as_bytes(),
            older.as_bytes(),
            oldest.as_bytes()
        ]
    );
}

#[tokio::test]
async fn a_json_secret_is_read_as_a_key_set() {
    let root = tempfile::tempdir().unwrap();
    let (new, old) = (strong_key(), strong_key());
    std::fs::write(
        root.path().join("app_key"),
        format!(r#"{{"keys": [{{"id": "v2", "key": "{new}"}}, {{"id": "v1", "key": "{old}", "state": "disabled"}}]}}"#),
    )
    .unwrap();
    let versions = provider(root.path(), "").fetch().await.unwrap();
    assert_eq!(versions[0].id, "v2");
    assert_eq!(versions[1].state, KeyState::Disabled);
}

#[tokio::test]
async fn a_missing_secret_is_not_found_and_says_how_to_grant_it() {
    let root = tempfile::tempdir().unwrap();
    let err = provider(root.path(), "").fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::NotFound);
    assert!(
        err.to_string().contains("Docker secret `app_key` not found"),
        "{err}"
    );
    assert!(err.to_string().contains("secrets:"), "{err}");
}

#[tokio::test]
async fn a_named_fallback_secret_that_is_missing_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("app_key"), strong_key()).unwrap();
    let err = provider(root.path(), "&fallbacks=app_key_old")
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::NotFound);
    assert!(err.to_string().contains("`app_key_old`"), "{err}");
}

#[tokio::test]
async fn an_invalid_secret_is_refused_without_showing_keys() {
    let root = tempfile::tempdir().unwrap();
    let key = strong_key();
    std::fs::write(root.path().join("app_key"), format!("{{\"keys\": [\"{key}\"")).unwrap();
    let err = provider(root.path(), "").fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Invalid);
    keyroll_testkit::conformance::assert_no_material("error", &err.to_string(), &key);
}

#[test]
fn uris_name_one_secret_with_optional_root_and_fallbacks() {
    let parse = |uri: &str| DockerProvider::from_uri(uri);
    let provider = parse("docker://app_key?root=/srv/secrets&fallbacks=old,%20older").unwrap();
    assert_eq!(provider.name(), "app_key");
    assert_eq!(provider.root(), Path::new("/srv/secrets"));
    assert_eq!(provider.fallbacks(), ["old", "older"]);
    assert_eq!(
        provider.source(),
        "docker://app_key?root=/srv/secrets&fallbacks=old,older"
    );
    for (uri, says) in [
        ("docker://", "not a Docker secret name"),
        ("docker://..", "not a Docker secret name"),
        ("docker://app/key", "secret name only"),
        ("docker://app_key?root=secrets", "absolute path"),
        ("docker://app_key?fallbacks=a/b", "not a Docker secret name"),
        ("docker://app_key?format=json", "unknown parameter `format`"),
    ] {
        let err = parse(uri).unwrap_err();
        assert_eq!(err.kind(), ProviderErrorKind::Config, "{uri}");
        assert!(err.to_string().contains(says), "{uri}: {err}");
    }
}

#[tokio::test]
async fn rotating_is_refused_with_the_docker_way_to_do_it() {
    let root = tempfile::tempdir().unwrap();
    let err = provider(root.path(), "")
        .rotate(&KeyMaterial::from(strong_key()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Unsupported);
    assert!(err.to_string().contains("docker service update"), "{err}");
}

#[tokio::test]
async fn a_secret_updated_in_place_applies_through_the_watch() {
    let root = tempfile::tempdir().unwrap();
    let (new, old) = (strong_key(), strong_key());
    let path = root.path().join("app_key");
    std::fs::write(&path, format!("{old}\n")).unwrap();
    let refresher = Refresher::builder(provider(root.path(), ""))
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let temp = root.path().join(".app_key.tmp");
    std::fs::write(&temp, format!("{new}\n{old}\n")).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    let signs_new = || conformance::signs_with(&refresher, &new);
    while !signs_new() {
        assert!(
            // Far below the 30 s poll, robust on a loaded machine.
            started.elapsed() < Duration::from_secs(5),
            "the watch must apply the change"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "docker secret replaced: new key signing after {:?}",
        started.elapsed()
    );
    refresher.shutdown().await;
}

#[test]
fn secrets_on_a_kubernetes_volume_are_shared_unless_the_uri_says_otherwise() {
    use keyroll_core::Reach;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let docker = |uri: &str| DockerProvider::from_uri(uri).unwrap();
    let uri = format!("docker://app_key?root={}", root.display());
    assert_eq!(docker(&uri).reach(), Reach::Local, "a plain secrets directory");
    assert_eq!(docker(&format!("{uri}&reach=shared")).reach(), Reach::Shared);

    std::fs::create_dir(root.join("..2026_a")).unwrap();
    std::os::unix::fs::symlink("..2026_a", root.join("..data")).unwrap();
    let on_volume = docker(&uri);
    assert_eq!(on_volume.reach(), Reach::Shared);
    assert_eq!(
        on_volume.propagation_delay(),
        keyroll_file::KUBERNETES_PROPAGATION
    );
    let local = docker(&format!("{uri}&reach=local"));
    assert_eq!(local.reach(), Reach::Local);
    assert_eq!(
        docker(&local.source()).reach(),
        Reach::Local,
        "{}",
        local.source()
    );
    let error = DockerProvider::from_uri(&format!("{uri}&reach=all")).unwrap_err();
    assert_eq!(error.kind(), keyroll_core::ProviderErrorKind::Config);
}
