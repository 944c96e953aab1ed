//! Once nothing may sign (the keyring failed closed, or its only key is past
//! its expiry), no cookie is signed or encrypted: `add` answers a 503.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use keyroll_axum::{CookieKeys, CookieRejection};
use keyroll_core::{Closed, KeyEntry, KeyMaterial, KeySet, Keyring};

#[test]
fn nothing_is_signed_or_encrypted_once_the_only_key_is_past_its_expiry() {
    let now = SystemTime::now();
    let expired_at = now - Duration::from_secs(60);
    let only = KeyEntry::new(
        "only",
        KeyMaterial::from("axum-closed-test-key-0123456789abcdefghijkl"),
        Some(UNIX_EPOCH),
        Some(expired_at),
        Some(expired_at),
    );
    let keyring = Keyring::new(KeySet::new(vec![only], now - Duration::from_secs(120)).unwrap());
    let keys = CookieKeys::builder(keyring).salt("closed-test").build().unwrap();
    assert_eq!(keys.sign("session", "user=42"), Err(Closed::Expired));
    assert_eq!(keys.encrypt("prefs", "theme=dark"), Err(Closed::Expired));
    let answer = CookieRejection::from(Closed::Expired).into_response();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
}
