//! Every way Secrets Manager can fail, against a running refresher on a real
//! moto server: the last good key set keeps serving, the status says degraded
//! and why, and the refresher recovers within one poll interval of the repair.
//!
//! The store's own means are used where it has them (moto killed before the
//! start, a short or empty value staged by a rotation, moto's IAM denying a
//! user whose policy was deleted); the fault proxy of the testkit covers what
//! moto cannot be made to do (a 500, a hang, dropped connections, a garbled
//! body). A server killed mid-run and restarted is `outage.rs`
//! (`a_killed_server_keeps_the_last_good_keys_and_recovers_after_restart`).
//!
//! `cargo test -p keyroll-aws --test faults -- --nocapture` prints the
//! measured recovery times.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{admin, create, provider_builder, unique_name};
use keyroll_aws::{AwsProvider, AwsProviderBuilder};
use keyroll_core::{Refresher, RefresherBuilder};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::faults::{self, Fault, FaultProxy, ride_out};
use keyroll_testkit::moto::{self, Moto};
use keyroll_testkit::python::{python_with, run_python};

/// The refreshers' limit for one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The recovery bound: one poll interval plus the backoff cap, plus one fetch
/// timeout for a fetch still in flight when the store is repaired.
fn bound() -> Duration {
    faults::recovery_bound(FETCH_TIMEOUT)
}

/// Short SDK timeouts, so a hung endpoint fails a fetch well inside the
/// refresher's limit.
fn quick(builder: AwsProviderBuilder) -> AwsProvider {
    builder
        .attempt_timeout(Duration::from_millis(500))
        .max_attempts(2)
        .build()
        .expect("valid provider settings")
}

fn refresher_builder(provider: AwsProvider) -> RefresherBuilder {
    faults::refresher_builder(provider, FETCH_TIMEOUT)
}

async fn start(provider: AwsProvider) -> Refresher {
    refresher_builder(provider)
        .start()
        .await
        .expect("the refresher starts")
}

/// A moto server holding a fresh secret with one strong key.
async fn seeded(what: &str) -> Option<(Moto, String)> {
    let moto = Moto::start()?;
    let secret = unique_name(what);
    create(&admin(&moto), &secret, &strong_key(), None).await;
    Some((moto, secret))
}

/// Rides out `fault` at a proxy between the provider and moto (a fresh
/// secret named after `what`); see [`faults::ride_out_behind`].
async fn behind_a_proxy(what: &str, name: &str, fault: Fault, reason: &str) {
    let Some((moto, secret)) = seeded(what).await else {
        return;
    };
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let refresher = start(quick(provider_builder(&moto, &secret).endpoint(proxy.address()))).await;
    faults::ride_out_behind(name, &refresher, &proxy, fault, reason, bound()).await;
    refresher.shutdown().await;
}

/// Stages `value` as `AWSPENDING` (what a rotation's `createSecret` step
/// does) and returns its version id.
async fn stage_pending(moto: &Moto, secret: &str, value: &str) -> String {
    admin(moto)
        .put_secret_value()
        .secret_id(secret)
        .secret_string(value)
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("put a pending version")
        .version_id()
        .expect("version id")
        .to_owned()
}

/// Cancels the rotation that staged `version`: takes `AWSPENDING` off it.
async fn cancel_pending(moto: &Moto, secret: &str, version: &str) {
    admin(moto)
        .update_secret_version_stage()
        .secret_id(secret)
        .version_stage("AWSPENDING")
        .remove_from_version_id(version)
        .send()
        .await
        .expect("take AWSPENDING off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_store_at_startup_fails_the_start_within_the_startup_timeout_and_says_why() {
    let Some((mut moto, secret)) = seeded("startup").await else {
        return;
    };
    let provider = quick(provider_builder(&moto, &secret));
    moto.kill();
    let startup_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = refresher_builder(provider)
        .startup_timeout(startup_timeout)
        .start()
        .await
        .unwrap_err();
    let took = started.elapsed();
    let message = error.to_string();
    assert!(message.contains("cannot reach the endpoint"), "{message}");
    assert!(message.contains(&secret), "names the secret: {message}");
    assert!(
        took <= startup_timeout + FETCH_TIMEOUT,
        "gave up after {took:?}, the startup timeout is {startup_timeout:?}"
    );
    eprintln!(
        "dead at startup: failed after {took:?} and {} attempts: {message}",
        error.attempts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_500_in_front_of_the_store_keeps_the_last_keys() {
    behind_a_proxy(
        "http500",
        "aws behind a proxy answering 500",
        Fault::Status(500),
        "HTTP 500",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_store_times_out_and_the_last_keys_serve_until_it_answers() {
    behind_a_proxy("hung", "aws hung", Fault::Hang, "no answer in time").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_without_an_answer_keep_the_last_keys() {
    behind_a_proxy(
        "closed",
        "aws connections closed",
        Fault::Close,
        "store unavailable",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_is_refused_and_the_last_keys_serve() {
    behind_a_proxy(
        "garbled",
        "aws answer garbled",
        Fault::CorruptBody,
        "malformed answer",
    )
    .await;
}

/// A weak key staged as `AWSPENDING` (it would sign once promoted) refuses the
/// set; cancelling the rotation repairs it. The provider leaves out versions
/// without labels (`max_deprecated(0)`) so the cancelled version does not stay
/// behind as a (dropped) fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_key_staged_by_a_rotation_is_refused_until_the_rotation_is_cancelled() {
    let Some((moto, secret)) = seeded("weak").await else {
        return;
    };
    let refresher = start(quick(provider_builder(&moto, &secret).max_deprecated(0))).await;
    let weak = OnceLock::new();
    let outcome = ride_out(
        "aws weak key staged",
        &refresher,
        async || {
            weak.set(stage_pending(&moto, &secret, "short-key").await)
                .unwrap()
        },
        "is weak",
        async || cancel_pending(&moto, &secret, weak.get().expect("staged")).await,
        bound(),
    )
    .await;
    assert!(!outcome.last_error.contains("short-key"), "{outcome:?}");
    refresher.shutdown().await;
}

/// AWS refuses an empty `SecretString` itself; what does reach a reader is an
/// empty field of a JSON secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_field_staged_by_a_rotation_is_refused_until_the_rotation_is_cancelled() {
    let Some(moto) = Moto::start() else { return };
    let secret = unique_name("empty");
    let json = |key: &str| serde_json::json!({ "user": "app", "key": key }).to_string();
    create(&admin(&moto), &secret, &json(&strong_key()), None).await;
    let refresher = start(quick(
        provider_builder(&moto, &secret).field("key").max_deprecated(0),
    ))
    .await;
    let empty = OnceLock::new();
    ride_out(
        "aws empty field staged",
        &refresher,
        async || empty.set(stage_pending(&moto, &secret, &json("")).await).unwrap(),
        "empty",
        async || cancel_pending(&moto, &secret, empty.get().expect("staged")).await,
        bound(),
    )
    .await;
    refresher.shutdown().await;
}

/// moto enforces IAM after the first 7 requests, which create the secret, an
/// admin user and a reader user with their policies and access keys. Deleting
/// the reader's policy denies it; putting it back lets it read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_denied_by_iam_keeps_the_last_keys_until_the_policy_is_restored() {
    let Some(python) = python_with(&["boto3"]) else {
        return;
    };
    let Some(moto) = Moto::start_with_iam_after(7) else {
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
keys = []
for user, action in (("admin", "*"), ("reader", "secretsmanager:*")):
    iam.create_user(UserName=user)
    access = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(UserName=user, PolicyName="access", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}))
    keys += [access["AccessKeyId"], access["SecretAccessKey"]]
print(*keys)
"#;
    let printed = run_python(&python, setup, &[&moto.endpoint(), &secret, &strong_key()]);
    let keys: Vec<&str> = printed.split_whitespace().collect();
    let [admin_id, admin_key, reader_id, reader_key] = keys[..] else {
        panic!("four access key parts: {printed}")
    };
    // The admin deletes or restores the reader's policy.
    let policy = r#"
import json, sys, boto3
endpoint, key_id, key, action = sys.argv[1:5]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=key_id, aws_secret_access_key=key)
if action == "delete":
    iam.delete_user_policy(UserName="reader", PolicyName="access")
else:
    iam.put_user_policy(UserName="reader", PolicyName="access", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}))
"#;
    let endpoint = moto.endpoint();
    let admin_does = |action: &str| {
        run_python(&python, policy, &[&endpoint, admin_id, admin_key, action]);
    };
    let reader = AwsProvider::builder()
        .secret_id(&secret)
        .region(moto::REGION)
        .endpoint(moto.endpoint())
        .credentials(reader_id, reader_key);
    let refresher = start(quick(reader)).await;
    ride_out(
        "aws permission denied (IAM)",
        &refresher,
        async || admin_does("delete"),
        "permission denied",
        async || admin_does("put"),
        bound(),
    )
    .await;
    refresher.shutdown().await;
}
