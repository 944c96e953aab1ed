//! Reads the session cookie of a Django app that uses the `signed_cookies`
//! session backend, with keys that rotate.
//!
//! ```text
//! DJANGO_SECRET_KEY=... DJANGO_SECRET_KEY_FALLBACKS=old1,old2 \
//!     cargo run --example django_session -- '<sessionid cookie value>'
//! ```
//!
//! Without a cookie it makes one as Django would (signed with the first
//! fallback, as a replica that has not rotated yet) and reads it back. When a
//! fallback key verified, it prints the cookie re-signed with the current key,
//! which is what a service sets in its response (re-sign on read).

use std::time::{SystemTime, UNIX_EPOCH};

use keyroll::django::SignedCookieSessions;
use keyroll::{KeyEntry, KeyMaterial, KeySet, Keyring};
use serde_json::json;

/// `SECRET_KEY` and `SECRET_KEY_FALLBACKS` as a key set: the current key signs,
/// the fallbacks only verify, newest first (Django's order).
fn keyring(secret_key: &str, fallbacks: &[String]) -> Keyring {
    let mut entries = vec![KeyEntry::new(
        "SECRET_KEY",
        KeyMaterial::from(secret_key),
        Some(UNIX_EPOCH),
        None,
        None,
    )];
    for (index, fallback) in fallbacks.iter().enumerate() {
        let id = format!("SECRET_KEY_FALLBACKS[{index}]");
        entries.push(KeyEntry::new(
            id,
            KeyMaterial::from(fallback.as_str()),
            Some(UNIX_EPOCH),
            Some(UNIX_EPOCH),
            None,
        ));
    }
    Keyring::new(KeySet::new(entries, SystemTime::now()).expect("SECRET_KEY signs"))
}

fn main() {
    let secret_key = std::env::var("DJANGO_SECRET_KEY")
        .unwrap_or_else(|_| "django-insecure-example-current-key-0123456789abcdef".to_owned());
    let fallbacks: Vec<String> = std::env::var("DJANGO_SECRET_KEY_FALLBACKS")
        .unwrap_or_else(|_| "django-insecure-example-previous-key-0123456789abcdef".to_owned())
        .split(',')
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
        .collect();
    let sessions = SignedCookieSessions::new(keyring(&secret_key, &fallbacks));

    let cookie = match std::env::args().nth(1) {
        Some(cookie) => cookie,
        None => {
            let not_rotated =
                SignedCookieSessions::new(keyring(fallbacks.first().unwrap_or(&secret_key), &[]));
            let cookie = not_rotated
                .save(&json!({"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"}))
                .expect("JSON values serialize");
            println!("no cookie given; made one with the previous key:\n  sessionid={cookie}\n");
            cookie
        }
    };

    match sessions.load(&cookie) {
        Ok(session) => {
            println!(
                "session data: {}",
                serde_json::Value::Object(session.value.clone())
            );
            println!("verified by {} ({})", session.key.id, session.key.role);
            if session.needs_resign() {
                let fresh = sessions.save(&session.value).expect("JSON values serialize");
                println!("signed with an old key: set the cookie again\n  Set-Cookie: sessionid={fresh}");
            }
        }
        Err(error) => {
            // Django treats an unreadable session as a new, empty one.
            eprintln!("not a valid session cookie ({error}); Django would start an empty session");
            std::process::exit(1);
        }
    }
}
