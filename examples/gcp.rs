//! A service that signs with the key in Google Cloud Secret Manager, follows a
//! rotation live, and disables the retired version.
//!
//! ```sh
//! # Self-contained: against the test server of keyroll-testkit on loopback.
//! cargo run --features gcp --example gcp
//! # Against the real service (Application Default Credentials; the caller
//! # needs roles/secretmanager.secretVersionManager and secretAccessor):
//! gcloud secrets create app-key --replication-policy=automatic
//! head -c 32 /dev/urandom | base64 | gcloud secrets versions add app-key --data-file=-
//! cargo run --features gcp --example gcp -- gcp-sm://projects/MY_PROJECT/secrets/app-key
//! ```
//!
//! The example prints which version signs, rotates (adds a version with its
//! CRC32C, as `keyroll rotate` does), waits until the new version signs, shows
//! that a token signed before still verifies (and asks for re-signing), then
//! disables the old version and shows the token stop verifying.

use std::time::{Duration, Instant};

use keyroll::{KeyMaterial, Policy, Refresher, Signer};
use keyroll_testkit::conformance::strong_key;
use keyroll_testkit::gcp::SecretManagerServer;

const DEMO_SECRET: &str = "projects/demo/secrets/app-key";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Without an argument, a local server holding one version.
    let mut local = None;
    let uri = match std::env::args().nth(1) {
        Some(uri) => uri,
        None => {
            let server = SecretManagerServer::start().await;
            server.create_secret(DEMO_SECRET);
            server.add_version(DEMO_SECRET, strong_key().as_bytes());
            let uri = format!("gcp-sm://{DEMO_SECRET}?endpoint={}", server.endpoint());
            local = Some(server);
            uri
        }
    };
    println!("reading {}", keyroll::open(&uri)?.source());

    // No activation delay for the demo: a fleet keeps the default (a new
    // version only signs once every replica has had time to see it).
    let refresher = Refresher::builder(keyroll::open(&uri)?)
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_millis(500))
        .start()
        .await?;
    let signer = Signer::new(refresher.keyring().clone()).with_salt("example");
    let before = signer.sign("signed before the rotation")?;
    let old = signer.verify(&before)?.key.id;
    println!("version {old} signs");

    let store = keyroll::open(&uri)?;
    let published = store.rotate(&KeyMaterial::from(strong_key())).await?;
    println!("rotated: added version {}", published.id);
    let started = Instant::now();
    while &*signer.verify(&signer.sign("probe")?)?.key.id != published.id.as_str() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("version {} signs after {:?}", published.id, started.elapsed());
    let verified = signer.verify(&before)?;
    println!(
        "the old token still verifies with version {} (re-sign: {})",
        verified.key.id,
        verified.needs_resign()
    );

    store.disable(&old).await?;
    println!("disabled version {old}");
    while signer.verify(&before).is_ok() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the old token no longer verifies: {:?}",
        signer.verify(&before).unwrap_err()
    );
    println!("status: {:?}", refresher.status().health);
    refresher.shutdown().await;
    drop(local);
    Ok(())
}
