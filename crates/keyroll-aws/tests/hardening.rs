//! What a hostile or broken Secrets Manager answer, or a careless URI, must
//! never do: leak a secret or a password, send credentials in clear to the
//! network, or cut the versions the policy in use can use.

mod common;

use std::time::Duration;

use common::{admin, create, policy, provider_builder, put, refresher, unique_name};
use keyroll_aws::AwsProvider;
use keyroll_core::{FromSource, Health, KeyProvider, KeySource, ProviderErrorKind, Refresher};
use keyroll_testkit::conformance::{assert_no_material, strong_key};
use keyroll_testkit::faults::{Fault, FaultProxy};
use keyroll_testkit::moto::Moto;
use keyroll_testkit::{endpoints, logs, wait_until};

/// Display and Debug of `error` and of every error in its `source()` chain.
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(e) = next {
        text.push_str(&format!("{e}\n{e:?}\n"));
        next = e.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_answer_carrying_the_secret_leaks_it_into_no_error_status_or_log() {
    let logs = logs::everything();
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("garbled");
    let (first, second) = (strong_key(), strong_key());
    create(&admin(&moto), &secret, &first, None).await;
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let provider = || {
        provider_builder(&moto, &secret)
            .endpoint(proxy.address())
            .attempt_timeout(Duration::from_millis(500))
            .build()
            .unwrap()
    };
    let mark = logs.len();

    // A fetch whose GetSecretValue answer is the whole secret plus garbage.
    proxy.set(Fault::GarbleBody("GetSecretValue"));
    let error = provider().fetch().await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("malformed answer"), "{error}");
    assert_no_material("the fetch error chain", &chain_text(&error), &first);

    // A refresher starting on it fails without the secret in its error.
    let start = Refresher::builder(provider())
        .policy(policy())
        .startup_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap_err();
    assert_no_material("the start error chain", &chain_text(&start), &first);

    // A running refresher meets a garbled new version: status says so, without it.
    proxy.set(Fault::PassThrough);
    let running = refresher(provider(), policy()).await;
    put(&admin(&moto), &secret, &second).await;
    proxy.set(Fault::GarbleBody("GetSecretValue"));
    wait_until("the refresher reports the garbled answer", || {
        running.status().health == Health::Degraded
    })
    .await;
    let status = running.status();
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("malformed answer")),
        "{status:?}"
    );
    assert_no_material("the status", &format!("{status:?}"), &second);
    running.shutdown().await;

    let traced = logs.since(mark);
    assert!(
        traced.contains("GetSecretValue"),
        "TRACE output of the SDK was captured: {traced}"
    );
    assert_no_material("TRACE output", &traced, &first);
    assert_no_material("TRACE output", &traced, &second);
    assert!(proxy.forwarded() > 0);
}

#[test]
fn user_info_in_a_uri_or_endpoint_is_refused_and_never_shown() {
    endpoints::assert_user_info_refused(
        AwsProvider::from_source,
        &[
            "aws-sm://app?endpoint=http://u:pw-s3cr3t@127.0.0.1:4566&regoin=x",
            "aws-sm://app?endpoint=http://u:pw-s3cr3t@127.0.0.1:4566",
            "aws-sm://app?endpoint=http%3A%2F%2Fu%3Apw-s3cr3t%40127.0.0.1%3A4566",
            "aws-sm://app?endpoint=https://pw-s3cr3t@example.com",
        ],
        "s3cr3t",
    );
    let error = AwsProvider::builder()
        .secret_id("app")
        .endpoint("https://AKIA:pw-s3cr3t@secretsmanager.eu-west-1.amazonaws.com")
        .build()
        .unwrap_err();
    assert!(!chain_text(&error).contains("s3cr3t"), "{error}");
    assert!(error.to_string().contains("credentials"), "{error}");
}

#[test]
fn plain_http_is_refused_off_this_machine_unless_allowed_and_always_warned_about() {
    endpoints::assert_plaintext_rules(
        AwsProvider::from_source,
        "aws-sm://app?region=eu-west-1&endpoint=http://moto.internal:4566",
        &[
            "aws-sm://app?region=eu-west-1&endpoint=http://moto.internal:4566&insecure_http=true",
            "aws-sm://app?region=eu-west-1&endpoint=http://127.0.0.1:4566",
            "aws-sm://app?region=eu-west-1&endpoint=http://localhost:4566",
        ],
        "aws-sm://app?region=eu-west-1&endpoint=https://moto.internal:4566",
        "signed requests",
    );
    assert!(
        KeySource::parse("aws-sm://app?endpoint=http://127.0.0.1:1&insecure_http=yes")
            .and_then(|s| AwsProvider::from_source(&s))
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_fallbacks_ten_with_twelve_versions_keeps_ten_fallbacks() {
    let Some(moto) = Moto::start() else { return };
    let client = admin(&moto);
    let secret = unique_name("many-fallbacks");
    create(&client, &secret, &strong_key(), None).await;
    for _ in 0..11 {
        put(&client, &secret, &strong_key()).await;
    }
    let counts =
        keyroll_testkit::fallbacks_by_policy(|| provider_builder(&moto, &secret).build().unwrap()).await;
    assert_eq!(counts, [10, keyroll_core::DEFAULT_MAX_FALLBACKS]);
}

#[test]
fn zero_attempts_or_a_zero_timeout_is_an_error_as_on_the_other_stores() {
    let builder = || AwsProvider::builder().secret_id("app").region("eu-west-1");
    for built in [
        builder().max_attempts(0).build(),
        builder().attempt_timeout(Duration::ZERO).build(),
        builder().connect_timeout(Duration::ZERO).build(),
    ] {
        assert_eq!(built.unwrap_err().kind(), ProviderErrorKind::Config);
    }
    builder()
        .attempt_timeout(Duration::MAX)
        .max_attempts(u32::MAX)
        .build()
        .expect("huge settings saturate, never panic");
}
