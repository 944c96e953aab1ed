//! A keyring that failed closed verifies nothing in Django's format either.

use std::time::Duration;

use keyroll_core::Closed;
use keyroll_core::kit::Rejection;
use keyroll_core::{Health, Policy, Refresher};
use keyroll_django::Unserved;
use keyroll_django::{CookieSigner, Error, Signer, TimestampSigner};
use keyroll_file::FileProvider;

#[tokio::test]
async fn a_keyring_that_failed_closed_refuses_django_values_until_the_store_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, "django-stale-test-key-0123456789abcdefghijklmnop\n").unwrap();
    let refresher = Refresher::builder(FileProvider::new(&path))
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_millis(30))
        .backoff(Duration::from_millis(10), Duration::from_millis(30))
        .fail_closed_after(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let signer = Signer::new(refresher.keyring().clone());
    let value = signer.sign("hello").unwrap();

    let moved = dir.path().join("keys.away");
    std::fs::rename(&path, &moved).unwrap();
    while refresher.status().health != Health::Stale {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(signer.verify(&value).unwrap_err(), Error::Keys(Unserved::Stale));
    // Nothing signs either, in any of Django's forms.
    let keyring = refresher.keyring().clone();
    assert_eq!(signer.sign("x"), Err(Closed::FailedClosed));
    assert_eq!(
        TimestampSigner::new(keyring.clone()).sign("x"),
        Err(Closed::FailedClosed)
    );
    let unsigned = signer
        .sign_object(&serde_json::json!({"user": 42}), false)
        .unwrap_err();
    assert_eq!(unsigned, Error::Keys(Unserved::Closed(Closed::FailedClosed)));
    // One kind for both, which every binding raises as `FailedClosed`: not a
    // bad token, not a configuration error.
    for error in [&unsigned, &signer.verify(&value).unwrap_err()] {
        assert_eq!(error.rejection(), Some(Rejection::Stale), "{error}");
    }
    let cookies = CookieSigner::builder(keyring, "sessionid").build();
    assert_eq!(cookies.sign("x"), Err(Closed::FailedClosed));

    std::fs::rename(&moved, &path).unwrap();
    while refresher.keyring().is_closed() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(signer.verify(&value).unwrap().value, "hello");
}
