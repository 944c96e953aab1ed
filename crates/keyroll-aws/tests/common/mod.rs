//! Shared set-up of the tests: a moto server, an admin client that seeds
//! secrets the way an operator would, and providers reading them.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use keyroll_aws::AwsProvider;
use keyroll_core::{KeyProvider, Policy, Refresher, async_trait};
use keyroll_testkit::conformance::TestStore;
use keyroll_testkit::moto::{self, Moto};

/// A secret name no other test uses (moto's state is global per server).
pub fn unique_name(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "keyroll/{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Secrets Manager client for moto with the dummy credentials: the operator.
pub fn admin(moto: &Moto) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(moto::REGION))
        .endpoint_url(moto.endpoint())
        // The crate builds the SDK without its default client (one TLS stack): plain HTTP to moto.
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .credentials_provider(Credentials::new(
            moto::ACCESS_KEY_ID,
            moto::SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        ))
        .build();
    Client::from_conf(config)
}

/// A provider reading `secret` from `moto`, with the dummy credentials.
pub fn provider(moto: &Moto, secret: &str) -> AwsProvider {
    provider_builder(moto, secret)
        .build()
        .expect("valid provider settings")
}

/// The builder of [`provider`], to add a field or other settings.
pub fn provider_builder(moto: &Moto, secret: &str) -> keyroll_aws::AwsProviderBuilder {
    AwsProvider::builder()
        .secret_id(secret)
        .region(moto::REGION)
        .endpoint(moto.endpoint())
        .credentials(moto::ACCESS_KEY_ID, moto::SECRET_ACCESS_KEY)
}

/// Creates `secret` holding `value` as its first (AWSCURRENT) version; with
/// `token`, the version id is `token` (so a restarted moto can be re-seeded
/// with the same ids). Returns the version id.
pub async fn create(client: &Client, secret: &str, value: &str, token: Option<&str>) -> String {
    client
        .create_secret()
        .name(secret)
        .secret_string(value)
        .set_client_request_token(token.map(str::to_owned))
        .send()
        .await
        .expect("create secret")
        .version_id()
        .expect("version id")
        .to_owned()
}

/// Puts `value` as the new AWSCURRENT version (what a console edit or a
/// plain `aws secretsmanager put-secret-value` does). Returns the version id.
pub async fn put(client: &Client, secret: &str, value: &str) -> String {
    client
        .put_secret_value()
        .secret_id(secret)
        .secret_string(value)
        .send()
        .await
        .expect("put secret value")
        .version_id()
        .expect("version id")
        .to_owned()
}

/// The policy the tests use: no activation delay, unless a test sets one.
pub fn policy() -> Policy {
    Policy::default().with_activation_delay(Duration::ZERO)
}

/// A refresher polling `provider` every 100 ms.
pub async fn refresher(provider: impl KeyProvider, policy: Policy) -> Refresher {
    Refresher::builder(provider)
        .policy(policy)
        .interval(Duration::from_millis(100))
        .jitter(Duration::from_millis(10))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .start()
        .await
        .expect("the refresher starts")
}

/// A secret in moto, rotated by putting AWSCURRENT versions: the store of
/// the conformance suite.
#[derive(Debug)]
pub struct MotoStore {
    pub moto: Moto,
    pub client: Client,
    pub secret: String,
    created: AtomicBool,
}

impl MotoStore {
    /// A store for a fresh secret in a running moto.
    pub fn new(moto: Moto, what: &str) -> Self {
        let client = admin(&moto);
        Self {
            moto,
            client,
            secret: unique_name(what),
            created: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl TestStore for MotoStore {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(provider(&self.moto, &self.secret))
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        Box::new(provider(&self.moto, &format!("{}-never-created", self.secret)))
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        // A secret created without a value has no version.
        let empty = format!("{}-empty", self.secret);
        self.client
            .create_secret()
            .name(&empty)
            .send()
            .await
            .expect("create an empty secret");
        Box::new(provider(&self.moto, &empty))
    }

    async fn publish(&self, material: &str) {
        if self.created.swap(true, Ordering::SeqCst) {
            put(&self.client, &self.secret, material).await;
        } else {
            create(&self.client, &self.secret, material, None).await;
        }
    }
}
