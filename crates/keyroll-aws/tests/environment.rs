//! A provider built from a URI alone takes credentials, region and endpoint
//! from the standard AWS environment. Its own test binary: it sets process
//! environment variables.

mod common;

use common::{admin, create, unique_name};
use keyroll_aws::AwsProvider;
use keyroll_core::{FromSource, KeyProvider, ProviderErrorKind};
use keyroll_testkit::conformance::{set_env_var, strong_key};
use keyroll_testkit::moto::{self, Moto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_uses_the_standard_chain_and_aws_endpoint_url() {
    let Some(moto) = Moto::start() else { return };
    let (first, second) = (unique_name("env-a"), unique_name("env-b"));
    let (key_a, key_b) = (strong_key(), strong_key());
    create(&admin(&moto), &first, &key_a, None).await;
    create(&admin(&moto), &second, &key_b, None).await;

    set_env_var("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID);
    set_env_var("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY);
    set_env_var("AWS_CONFIG_FILE", "/nonexistent/keyroll-test/config");
    set_env_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/keyroll-test/credentials",
    );
    set_env_var("AWS_EC2_METADATA_DISABLED", "true");

    // No region anywhere: a configuration error that says how to give one.
    let uri = format!("aws-sm://{first}?endpoint={}", moto.endpoint());
    let err = AwsProvider::from_uri(&uri).unwrap().fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Config, "{err}");
    assert!(err.to_string().contains("?region="), "{err}");

    set_env_var("AWS_REGION", moto::REGION);

    // Endpoint from the URI.
    let uri = format!("aws-sm://{first}?endpoint={}", moto.endpoint());
    let provider = AwsProvider::from_uri(&uri).unwrap();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key_a.as_bytes());

    // Endpoint from AWS_ENDPOINT_URL, as the AWS CLI and SDKs do.
    set_env_var("AWS_ENDPOINT_URL", &moto.endpoint());
    let provider = AwsProvider::from_uri(&format!("aws-sm://{second}")).unwrap();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key_b.as_bytes());
}
