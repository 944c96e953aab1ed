//! Shared setup: a Secret Manager server on loopback, providers pointed at it.

#![allow(dead_code)] // each test file uses a part

use std::time::Duration;

use keyroll_core::{Policy, Refresher};
use keyroll_gcp::GcpProvider;
use keyroll_testkit::gcp::SecretManagerServer;

/// A server holding one empty secret `name`.
pub async fn server_with(name: &str) -> SecretManagerServer {
    let server = SecretManagerServer::start().await;
    server.create_secret(name);
    server
}

/// A provider reading `name` on `server`, anonymously over http.
pub fn provider(server: &SecretManagerServer, name: &str) -> GcpProvider {
    GcpProvider::builder()
        .secret(name)
        .endpoint(server.endpoint())
        .build()
        .expect("a valid secret name and endpoint")
}

/// A refresher over `provider` polling every 100 ms, no activation delay.
pub async fn refresher(provider: GcpProvider) -> Refresher {
    Refresher::builder(provider)
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_millis(100))
        .jitter(Duration::from_millis(10))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .start()
        .await
        .expect("the refresher starts")
}

/// The `:access` calls the server has served so far.
pub fn accesses(server: &SecretManagerServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.ends_with(":access"))
        .collect()
}
