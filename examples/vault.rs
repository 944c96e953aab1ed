//! A service that signs with the key in Vault and follows rotations live.
//!
//! ```sh
//! bao server -dev -dev-root-token-id=root &          # or: vault server -dev
//! export VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root
//! bao kv put secret/myapp key="$(head -c 32 /dev/urandom | base64)"
//! cargo run --features vault --example vault        # in another terminal:
//! bao kv put secret/myapp key="$(head -c 32 /dev/urandom | base64)"
//! ```
//!
//! The example prints, every second, which version signs and whether a
//! token signed at start-up still verifies. After the second `kv put` the new
//! version is pending for one poll interval plus a clock-skew margin (every
//! replica must have seen it before anyone signs with it), then signs; the
//! start-up token keeps verifying with the old version and asks for
//! re-signing. Give another source as the first argument, such as
//! `vault://vault.internal:8200/secret/myapp?auth=approle`.

use std::time::Duration;

use keyroll::{Policy, Refresher, Signer};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "vault:///secret/myapp".to_owned());
    let provider = keyroll::open(&uri)?;
    println!("reading {}", provider.source());

    // A short poll interval for the demo; the activation delay follows from it.
    let refresher = Refresher::builder(provider)
        .policy(Policy::default())
        .interval(Duration::from_secs(2))
        .start()
        .await?;
    let signer = Signer::new(refresher.keyring().clone()).with_salt("example");
    let first = signer.sign("signed at start-up")?;

    loop {
        let keys = refresher.keyring().load();
        let roles: Vec<String> = keys
            .keys()
            .iter()
            .map(|k| format!("v{}={}", k.id(), k.role_at(std::time::SystemTime::now())))
            .collect();
        let verified = signer.verify(&first);
        println!(
            "signing with v{} | keys: {} | start-up token: {} | health: {:?}",
            keys.signing_key().id(),
            roles.join(" "),
            match &verified {
                Ok(v) if v.needs_resign() => format!("verifies with v{}, re-sign it", v.key.id),
                Ok(v) => format!("verifies with v{}", v.key.id),
                Err(e) => format!("rejected ({e})"),
            },
            refresher.status().health,
        );
        drop(keys);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    refresher.shutdown().await;
    Ok(())
}
