//! keyroll in one minute, needing nothing external.
//!
//! In a temporary directory: sign a session token with the key from a key
//! file, rotate the key file while the service runs, see the old token still
//! verify (as a fallback, flagged for re-signing), re-sign it, and see the old
//! token refused once the fallback window has passed.
//!
//! Run with `cargo run --example quickstart`.

use std::time::{Duration, Instant};

use keyroll::{Policy, Refresher, Signer};

/// A short fallback window so the demo ends quickly; production uses days.
const FALLBACK_WINDOW: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keys");
    let first_key = "quickstart-first-key-7c1f0e9a4b2d8e6f3a5c9b1d7e2f4a6c";
    let second_key = "quickstart-second-key-e4b9a1c7f3d5e2b8a6c4f1d9e7b3a5c2";

    println!("1. The key file {} holds one key.", path.display());
    std::fs::write(&path, format!("{first_key}\n"))?;

    let uri = format!("file://{}", path.display());
    let refresher = Refresher::builder(keyroll::open(&uri)?)
        .policy(Policy::default().with_fallback_window(FALLBACK_WINDOW))
        .start()
        .await?;
    let signer = Signer::new(refresher.keyring().clone())
        .with_salt("sessions")
        .with_timestamps();

    let old_token = signer.sign("user=42")?;
    println!("   Signed a session token: {old_token}");

    println!("2. Rotate: the new key goes first, the old one moves to the second line.");
    let mut changes = refresher.keyring().subscribe();
    let rotated_at = Instant::now();
    let staging = dir.path().join("keys.new");
    std::fs::write(&staging, format!("{second_key}\n{first_key}\n"))?;
    std::fs::rename(&staging, &path)?;
    tokio::time::timeout(Duration::from_secs(5), changes.changed()).await??;
    println!(
        "   The running service picked the change up in {} ms (generation {}).",
        rotated_at.elapsed().as_millis(),
        refresher.keyring().generation()
    );

    println!("3. The old token still verifies, with the old key as fallback:");
    let verified = signer.verify(&old_token)?;
    println!(
        "   value {:?}, verified by {} key {}, needs re-sign: {}",
        verified.value,
        verified.key.role,
        verified.key.id,
        verified.needs_resign()
    );
    let new_token = signer.sign(&verified.value)?;
    let reverified = signer.verify(&new_token)?;
    println!(
        "   Re-signed: {new_token}\n   verified by {} key {}.",
        reverified.key.role, reverified.key.id
    );

    println!(
        "4. Wait for the {} s fallback window to pass...",
        FALLBACK_WINDOW.as_secs()
    );
    tokio::time::sleep(FALLBACK_WINDOW + Duration::from_millis(200)).await;
    match signer.verify(&old_token) {
        Ok(_) => return Err("the old token should have been refused".into()),
        Err(error) => println!("   The old token is refused: {error}."),
    }
    println!(
        "   The re-signed token still verifies: {:?}.",
        signer.verify(&new_token)?.value
    );

    let status = refresher.status();
    println!(
        "5. Status: {:?}, generation {}, source {}.",
        status.health, status.generation, status.source
    );
    refresher.shutdown().await;
    Ok(())
}
