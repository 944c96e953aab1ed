//! The behaviour docs/WEB.md compares against: cookie-rs's `SignedJar`, the
//! single-key jar behind axum-extra's `SignedCookieJar` and tower-sessions'
//! `with_signed`, next to keyroll-axum on the same flow.

use keyroll_axum::CookieKeys;
use keyroll_axum::tower_cookies::{Cookie, Cookies, Key};
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};
use std::time::{Duration, SystemTime};

const OLD: &[u8] = b"old-secret-old-secret-old-secret-old-secret-old-secret-old-secret";
const NEW: &[u8] = b"new-secret-new-secret-new-secret-new-secret-new-secret-new-secret";

/// The value a single-key jar signed for cookie `name`.
fn signed_by_cookie_rs(key: &Key, name: &str, value: &str) -> String {
    let cookies = Cookies::default();
    cookies
        .signed(key)
        .add(Cookie::new(name.to_owned(), value.to_owned()));
    cookies.get(name).expect("added").value().to_owned()
}

/// What a single-key jar makes of `raw` sent as cookie `name`.
fn read_by_cookie_rs(key: &Key, name: &str, raw: &str) -> Option<String> {
    let cookies = Cookies::default();
    cookies.add(Cookie::new(name.to_owned(), raw.to_owned()));
    cookies.signed(key).get(name).map(|c| c.value().to_owned())
}

#[test]
fn single_key_jar_refuses_every_cookie_once_the_key_rotates() {
    let session = signed_by_cookie_rs(&Key::from(OLD), "session", "user=alice");
    assert_eq!(
        read_by_cookie_rs(&Key::from(OLD), "session", &session).as_deref(),
        Some("user=alice")
    );
    assert_eq!(
        read_by_cookie_rs(&Key::from(NEW), "session", &session),
        None,
        "logged out"
    );
}

#[test]
fn keyroll_keeps_the_cookie_across_the_same_rotation() {
    let keyring = Keyring::new(KeySet::single("old", KeyMaterial::new(OLD)).unwrap());
    let keys = CookieKeys::builder(keyring.clone()).build().unwrap();
    let session = keys.sign("session", "user=alice").unwrap();

    let now = SystemTime::now();
    keyring.install(
        KeySet::new(
            vec![
                KeyEntry::new("new", KeyMaterial::new(NEW), Some(now), None, None),
                KeyEntry::new(
                    "old",
                    KeyMaterial::new(OLD),
                    Some(SystemTime::UNIX_EPOCH),
                    Some(now),
                    Some(now + Duration::from_secs(3600)),
                ),
            ],
            now,
        )
        .unwrap(),
    );
    let verified = keys.verify("session", &session).expect("still accepted");
    assert_eq!(verified.value, "user=alice");
    assert_eq!(&*verified.key.id, "old");
    assert!(verified.needs_resign());
}

#[test]
fn single_key_jar_accepts_a_value_moved_to_another_cookie_name_keyroll_does_not() {
    let key = Key::from(OLD);
    let theme = signed_by_cookie_rs(&key, "theme", "user=admin");
    assert_eq!(
        read_by_cookie_rs(&key, "session", &theme).as_deref(),
        Some("user=admin")
    );

    let keyring = Keyring::new(KeySet::single("old", KeyMaterial::new(OLD)).unwrap());
    let keys = CookieKeys::builder(keyring).build().unwrap();
    let theme = keys.sign("theme", "user=admin").unwrap();
    assert!(keys.verify("session", &theme).is_none());
    assert_eq!(keys.verify("theme", &theme).unwrap().value, "user=admin");
}
