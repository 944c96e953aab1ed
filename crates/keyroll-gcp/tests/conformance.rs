//! The provider passes the conformance suite every keyroll provider passes,
//! for a global and a regional secret, over real HTTP with the official client.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;

use keyroll_core::{KeyProvider, async_trait};
use keyroll_gcp::GcpProvider;
use keyroll_testkit::conformance::{self, Capabilities, TestStore};
use keyroll_testkit::gcp::{SecretManagerServer, VersionState};

#[derive(Debug)]
struct GcpStore {
    server: SecretManagerServer,
    secret: String,
    /// Which version holds which key, for `disable`.
    versions: Mutex<HashMap<String, String>>,
}

impl GcpStore {
    async fn new(secret: &str) -> Self {
        Self {
            server: common::server_with(secret).await,
            secret: secret.to_owned(),
            versions: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl TestStore for GcpStore {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(common::provider(&self.server, &self.secret))
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        Box::new(common::provider(
            &self.server,
            &format!("{}-never-created", self.secret),
        ))
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        // A secret without versions.
        let empty = format!("{}-empty", self.secret);
        self.server.create_secret(&empty);
        Box::new(common::provider(&self.server, &empty))
    }

    async fn publish(&self, material: &str) {
        let version = self.server.add_version(&self.secret, material.as_bytes());
        self.versions.lock().unwrap().insert(material.to_owned(), version);
    }

    async fn disable(&self, material: &str) -> bool {
        let version = self.versions.lock().unwrap().get(material).cloned();
        match version {
            Some(version) => {
                self.server.set_state(&version, VersionState::Disabled);
                true
            }
            None => false,
        }
    }
}

/// A shared store, written by the provider's own `rotate` too.
fn caps() -> Capabilities {
    Capabilities::new().shared().with_created_times().with_disable()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_global_secret_passes_the_conformance_suite() {
    let store = GcpStore::new("projects/keyroll-test/secrets/app-key").await;
    conformance::run::<GcpProvider>(&store, caps()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_regional_secret_passes_the_conformance_suite() {
    let store = GcpStore::new("projects/keyroll-test/locations/europe-west1/secrets/app-key").await;
    conformance::run::<GcpProvider>(&store, caps()).await;
}
