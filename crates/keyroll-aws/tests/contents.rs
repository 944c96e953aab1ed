//! What a version holds (string, JSON field, binary) and how failures are
//! reported, against moto's server.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use common::{admin, create, provider, provider_builder, unique_name};
use keyroll_aws::AwsProvider;
use keyroll_core::{KeyMaterial, KeyProvider, ProviderErrorKind};
use keyroll_testkit::conformance::{assert_no_material, strong_key};
use keyroll_testkit::moto::{self, Moto};
use keyroll_testkit::python::{python_with, run_python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_string_is_the_key_as_is() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("string");
    let key = format!("{} with spaces, \"quotes\" and ünïcode", strong_key());
    create(&admin(&moto), &secret, &key, None).await;
    let versions = provider(&moto, &secret).fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_binary_is_the_key_as_raw_bytes() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("binary");
    let bytes: Vec<u8> = (0..=255u8).rev().chain(0..32).collect();
    admin(&moto)
        .create_secret()
        .name(&secret)
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await
        .unwrap();
    let versions = provider(&moto, &secret).fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), bytes.as_slice());

    let err = provider_builder(&moto, &secret)
        .field("key")
        .build()
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("SecretBinary"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_field_is_selected_and_its_neighbours_are_left_alone() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("json");
    let (key, password) = (strong_key(), strong_key());
    let json = serde_json::json!({ "username": "app", "password": password, "signing_key": key }).to_string();
    create(&admin(&moto), &secret, &json, None).await;
    let reader = |field: &str| provider_builder(&moto, &secret).field(field).build().unwrap();
    let versions = reader("signing_key").fetch().await.unwrap();
    assert_eq!(versions[0].material.expose_secret(), key.as_bytes());

    // rotate through the field keeps the other fields.
    let writer = reader("signing_key");
    let new_key = strong_key();
    let published = writer.rotate(&KeyMaterial::from(new_key.as_str())).await.unwrap();
    let stored = admin(&moto)
        .get_secret_value()
        .secret_id(&secret)
        .version_id(&published.id)
        .send()
        .await
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    assert_eq!(stored["signing_key"], new_key.as_str());
    assert_eq!(stored["password"], password.as_str());
    assert_eq!(stored["username"], "app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_non_string_field_is_invalid_and_never_shows_the_secret() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("badfield");
    let password = strong_key();
    let json = serde_json::json!({ "password": password, "n": 7 }).to_string();
    create(&admin(&moto), &secret, &json, None).await;
    for field in ["signing_key", "n"] {
        let provider = provider_builder(&moto, &secret).field(field).build().unwrap();
        let err = provider.fetch().await.unwrap_err();
        assert_eq!(err.kind(), ProviderErrorKind::Invalid, "{err}");
        assert!(
            err.to_string().contains(field),
            "the error names the field: {err}"
        );
        assert_no_material("error", &format!("{err} {err:?}"), &password);
    }
    let plain = unique_name("plain");
    let key = strong_key();
    create(&admin(&moto), &plain, &key, None).await;
    let err = provider_builder(&moto, &plain)
        .field("key")
        .build()
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert_no_material("error", &format!("{err} {err:?}"), &key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_not_found() {
    let Some(moto) = Moto::start() else { return };
    let err = provider(&moto, &unique_name("absent")).fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains("region"),
        "the error says what to check: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_reported_unavailable_within_seconds() {
    let provider = AwsProvider::builder()
        .secret_id("anything")
        .region(moto::REGION)
        .endpoint(format!("http://127.0.0.1:{}", moto::closed_port()))
        .credentials(moto::ACCESS_KEY_ID, moto::SECRET_ACCESS_KEY)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// moto enforces IAM in server mode once `INITIAL_NO_AUTH_ACTION_COUNT`
/// requests have passed: the first ones create the secret and a user whose
/// policy allows reading the metadata but not the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_by_iam_is_permission_denied() {
    let Some(python) = python_with(&["boto3"]) else {
        return;
    };
    let Some(moto) = Moto::start_with_iam_after(4) else {
        return;
    };
    let secret = unique_name("denied");
    let setup = r#"
import json, sys, boto3
endpoint, secret, key = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
boto3.client("secretsmanager", **kw).create_secret(Name=secret, SecretString=key)
iam = boto3.client("iam", **kw)
iam.create_user(UserName="reader")
access = iam.create_access_key(UserName="reader")["AccessKey"]
iam.put_user_policy(UserName="reader", PolicyName="metadata-only", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow",
                   "Action": ["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"],
                   "Resource": "*"}]}))
print(access["AccessKeyId"], access["SecretAccessKey"])
"#;
    let printed = run_python(&python, setup, &[&moto.endpoint(), &secret, &strong_key()]);
    let (id, key) = printed.trim().split_once(' ').expect("access key id and secret");

    let reader = AwsProvider::builder()
        .secret_id(&secret)
        .region(moto::REGION)
        .endpoint(moto.endpoint())
        .credentials(id, key)
        .build()
        .unwrap();
    let err = reader.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("GetSecretValue"), "{err}");
    assert_eq!(
        reader.api_calls(),
        3,
        "denied at the value, after the metadata calls"
    );

    // Credentials IAM does not know at all.
    let err = common::provider(&moto, &secret).fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_endpoint_is_reported_unavailable_after_the_attempt_timeouts() {
    // Accepts connections and never answers.
    let listener = keyroll_testkit::ports::listener();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let provider = AwsProvider::builder()
        .secret_id("anything")
        .region(moto::REGION)
        .endpoint(endpoint)
        .credentials(moto::ACCESS_KEY_ID, moto::SECRET_ACCESS_KEY)
        .attempt_timeout(Duration::from_millis(500))
        .max_attempts(2)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = provider.fetch().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ProviderErrorKind::Unavailable, "{err}");
    assert!(
        took >= Duration::from_millis(500),
        "waited one attempt at least: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "two attempts of 500 ms and a backoff: {took:?}"
    );
    drop(listener);
}
