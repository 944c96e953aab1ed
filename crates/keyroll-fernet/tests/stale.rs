//! A keyring that failed closed decrypts nothing.

use std::time::Duration;

use keyroll_core::{Health, Policy, Refresher};
use keyroll_fernet::{DecryptError, Derive, Encrypter};
use keyroll_file::FileProvider;

#[tokio::test]
async fn a_keyring_that_failed_closed_refuses_to_decrypt_until_the_store_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(
        &path,
        [keyroll_fernet::generate_key().expose_secret(), b"\n"].concat(),
    )
    .unwrap();
    let refresher = Refresher::builder(FileProvider::new(&path))
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_millis(30))
        .backoff(Duration::from_millis(10), Duration::from_millis(30))
        .fail_closed_after(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let encrypter = Encrypter::new(refresher.keyring().clone(), Derive::Raw).unwrap();
    let token = encrypter.encrypt("secret").unwrap();

    let moved = dir.path().join("keys.away");
    std::fs::rename(&path, &moved).unwrap();
    while refresher.status().health != Health::Stale {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = encrypter.decrypt(&token, None).unwrap_err();
    assert_eq!(refused, DecryptError::Stale);
    // Nothing encrypts either.
    assert_eq!(
        encrypter.encrypt("new"),
        Err(keyroll_fernet::KeyError::Closed(
            keyroll_core::Closed::FailedClosed
        ))
    );
    assert!(
        !refused.is_invalid_token(),
        "stale keys are not the token's fault"
    );

    std::fs::rename(&moved, &path).unwrap();
    while refresher.keyring().is_closed() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(encrypter.decrypt(&token, None).unwrap().value, b"secret");
    assert!(encrypter.encrypt("new").is_ok());
}
