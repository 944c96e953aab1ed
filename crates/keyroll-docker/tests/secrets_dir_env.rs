//! `KEYROLL_SECRETS_DIR` moves the secrets directory. In its own test binary:
//! it changes the process environment.

use keyroll_core::{FromSource, KeyProvider};
use keyroll_docker::{DEFAULT_SECRETS_DIR, DockerProvider, SECRETS_DIR_VAR};
use keyroll_testkit::conformance::{set_env_var, strong_key};

#[tokio::test]
async fn secrets_dir_variable_replaces_the_default_root_and_root_parameter_wins() {
    assert_eq!(DEFAULT_SECRETS_DIR, "/run/secrets");
    let root = tempfile::tempdir().unwrap();
    let key = strong_key();
    std::fs::write(root.path().join("app_key"), &key).unwrap();
    set_env_var(SECRETS_DIR_VAR, root.path().to_str().unwrap());

    let provider = DockerProvider::from_uri("docker://app_key").unwrap();
    assert_eq!(provider.root(), root.path());
    assert_eq!(provider.source(), "docker://app_key");
    assert_eq!(
        provider.fetch().await.unwrap()[0].material.expose_secret(),
        key.as_bytes()
    );

    let given = DockerProvider::from_uri("docker://app_key?root=/srv/secrets").unwrap();
    assert_eq!(given.root(), std::path::Path::new("/srv/secrets"));

    set_env_var(SECRETS_DIR_VAR, "relative/secrets");
    let err = DockerProvider::new("app_key").unwrap_err();
    assert!(err.to_string().contains("not an absolute path"), "{err}");
}
