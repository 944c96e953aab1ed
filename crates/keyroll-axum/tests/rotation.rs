//! End to end over loopback HTTP: cookies survive a live rotation of the key
//! file, are re-issued with the new key, and expire with the old key.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestApp, key_id, new_key};
use keyroll_axum::{CookieKeys, CookieKind};
use keyroll_core::{KeyMaterial, KeySet, Keyring, Policy, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_from_the_old_key_is_accepted_and_reissued_with_the_new_key() {
    let (old, new) = (new_key(), new_key());
    let app = TestApp::start(&[&old], Policy::default()).await;
    let (session, _) = app.login("alice").await;

    app.rotate_to(&[&new, &old]).await;
    let reply = app.get("/me", &[("session", &session)]).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "user=alice");
    let reissued = reply
        .cookie("session")
        .expect("the response sets the session again");
    assert_ne!(reissued, session);
    let attributes = reply.set_cookies.iter().find(|c| c.name() == "session").unwrap();
    assert_eq!(attributes.path(), Some("/"));
    assert_eq!(attributes.http_only(), Some(true));
    let reissues = app.reissues();
    assert_eq!(reissues.len(), 1, "{reissues:?}");
    assert_eq!(reissues[0].name, "session");
    assert_eq!(reissues[0].kind, CookieKind::Signed);
    assert_eq!(&*reissues[0].verified_by.id, key_id(&old));
    assert_eq!(reissues[0].verified_by.role, Role::Fallback);
    assert_eq!(&*reissues[0].signed_by, key_id(&new));

    // The re-issued cookie is current: no further re-issue.
    let again = app.get("/me", &[("session", &reissued)]).await;
    assert_eq!((again.status, again.body.as_str()), (200, "user=alice"));
    assert!(again.cookie("session").is_none());
    assert_eq!(app.reissues().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reissued_cookie_verifies_with_the_new_key_only() {
    let (old, new) = (new_key(), new_key());
    let app = TestApp::start(&[&old], Policy::default()).await;
    let (session, _) = app.login("bob").await;
    app.rotate_to(&[&new, &old]).await;
    let reissued = app
        .get("/me", &[("session", &session)])
        .await
        .cookie("session")
        .unwrap();

    let with_only = |key: &str| {
        let keyring = Keyring::new(KeySet::single("only", KeyMaterial::from(key)).unwrap());
        CookieKeys::builder(keyring).salt("e2e").build().unwrap()
    };
    assert_eq!(
        with_only(&new).verify("session", &reissued).unwrap().value,
        "user=bob"
    );
    assert!(with_only(&old).verify("session", &reissued).is_none());

    // Over HTTP, once the old key leaves the file: the re-issued cookie still
    // works, the original does not.
    app.rotate_to(&[&new]).await;
    let reply = app.get("/me", &[("session", &reissued)]).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "user=bob"));
    assert_eq!(app.get("/me", &[("session", &session)]).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reissue_keeps_the_first_issue_time() {
    let (old, new) = (new_key(), new_key());
    let app = TestApp::start(&[&old], Policy::default()).await;
    let (session, _) = app.login("carol").await;
    let issued = app.cookie_keys.verify("session", &session).unwrap().timestamp;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.rotate_to(&[&new, &old]).await;
    let reissued = app
        .get("/me", &[("session", &session)])
        .await
        .cookie("session")
        .unwrap();
    assert_eq!(
        app.cookie_keys.verify("session", &reissued).unwrap().timestamp,
        issued
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_cookie_is_rejected_after_the_fallback_window() {
    let (old, new) = (new_key(), new_key());
    let window = Duration::from_secs(2);
    let app = TestApp::start(&[&old], Policy::default().with_fallback_window(window)).await;
    let (session, prefs) = app.login("dave").await;
    app.rotate_to(&[&new, &old]).await;

    assert_eq!(app.get("/me", &[("session", &session)]).await.status, 200);
    assert_eq!(app.get("/prefs", &[("prefs", &prefs)]).await.status, 200);
    tokio::time::sleep(window + Duration::from_millis(500)).await;

    let reply = app.get("/me", &[("session", &session)]).await;
    assert_eq!((reply.status, reply.body.as_str()), (401, "unauthorized\n"));
    assert!(reply.set_cookies.is_empty());
    assert_eq!(app.get("/prefs", &[("prefs", &prefs)]).await.status, 401);
    // A fresh login works with the new key.
    let (fresh, _) = app.login("dave").await;
    assert_eq!(app.get("/me", &[("session", &fresh)]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_foreign_cookies_are_rejected_with_401_and_no_detail() {
    let key = new_key();
    let app = TestApp::start(&[&key], Policy::default()).await;
    let (session, prefs) = app.login("eve").await;

    let mut forged = Vec::new();
    // Flip one character of the payload, then of the MAC.
    for position in [session.len() / 2, session.len() - 3] {
        let mut bytes = session.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        forged.push(String::from_utf8(bytes).unwrap());
    }
    // Another payload with the original MAC.
    let (_, mac) = session.rsplit_once('.').unwrap();
    forged.push(format!("kr1.AAAAAAAAAAA.dXNlcj1hZG1pbg.{mac}"));
    // Signed with the same key under another application salt.
    let other_app = CookieKeys::builder(app.refresher.keyring().clone())
        .salt("other")
        .build()
        .unwrap();
    forged.push(other_app.sign("session", "user=admin").unwrap());
    // Not a token at all.
    forged.push("user=admin".to_owned());

    for value in &forged {
        let reply = app.get("/me", &[("session", value)]).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (401, "unauthorized\n"),
            "{value}"
        );
        assert!(reply.set_cookies.is_empty());
    }
    let mut bytes = prefs.into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let reply = app
        .get("/prefs", &[("prefs", &String::from_utf8(bytes).unwrap())])
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (401, "unauthorized\n"));
    assert!(app.reissues().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_moved_to_another_name_is_rejected() {
    let key = new_key();
    let app = TestApp::start(&[&key], Policy::default()).await;
    let (session, prefs) = app.login("mallory").await;

    assert_eq!(app.get("/remember", &[("remember", &session)]).await.status, 401);
    assert_eq!(app.get("/theme", &[("theme", &prefs)]).await.status, 401);
    // In the right place they work.
    assert_eq!(app.get("/me", &[("session", &session)]).await.status, 200);
    assert_eq!(app.get("/prefs", &[("prefs", &prefs)]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_cookie_from_the_old_key_is_reissued_and_stays_unreadable() {
    let (old, new) = (new_key(), new_key());
    let app = TestApp::start(&[&old], Policy::default()).await;
    let (_, prefs) = app.login("frank").await;
    assert!(!prefs.contains("frank"), "the value is encrypted");

    app.rotate_to(&[&new, &old]).await;
    let reply = app.get("/prefs", &[("prefs", &prefs)]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "theme=dark;owner=frank")
    );
    let reissued = reply.cookie("prefs").expect("re-issued");
    let reissues = app.reissues();
    assert_eq!(reissues.len(), 1);
    assert_eq!(reissues[0].kind, CookieKind::Private);
    assert_eq!(&*reissues[0].verified_by.id, key_id(&old));

    app.rotate_to(&[&new]).await;
    assert_eq!(app.get("/prefs", &[("prefs", &reissued)]).await.status, 200);
    assert_eq!(app.get("/prefs", &[("prefs", &prefs)]).await.status, 401);
}

/// Many clients keep using the app while the key file is rotated again and
/// again; each client always sends the latest cookie it was given, as a
/// browser does. No request may be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_during_repeated_rotation_have_no_false_rejects() {
    const CLIENTS: usize = 16;
    const ROTATIONS: usize = 12;
    let first = new_key();
    let app = Arc::new(TestApp::start(&[&first], Policy::default()).await);
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));

    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let (app, stop, requests) = (Arc::clone(&app), Arc::clone(&stop), Arc::clone(&requests));
        clients.push(tokio::spawn(async move {
            let user = format!("user{n}");
            let (mut session, mut prefs) = app.login(&user).await;
            let mut refused = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let reply = app.get("/me", &[("session", &session)]).await;
                if reply.status != 200 || reply.body != format!("user={user}") {
                    refused.push(format!("/me: {} {}", reply.status, reply.body));
                }
                if let Some(next) = reply.cookie("session") {
                    session = next;
                }
                let reply = app.get("/prefs", &[("prefs", &prefs)]).await;
                if reply.status != 200 {
                    refused.push(format!("/prefs: {} {}", reply.status, reply.body));
                }
                if let Some(next) = reply.cookie("prefs") {
                    prefs = next;
                }
                requests.fetch_add(2, Ordering::Relaxed);
            }
            refused
        }));
    }

    let mut keys = vec![first];
    for _ in 0..ROTATIONS {
        tokio::time::sleep(Duration::from_millis(150)).await;
        keys.insert(0, new_key());
        // One current key and the policy's 4 fallbacks (DEFAULT_MAX_FALLBACKS).
        keys.truncate(5);
        let current: Vec<&str> = keys.iter().map(String::as_str).collect();
        app.rotate_to(&current).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);

    let mut refused = Vec::new();
    for client in clients {
        refused.extend(client.await.expect("client task"));
    }
    let total = requests.load(Ordering::Relaxed);
    assert!(
        refused.is_empty(),
        "{} of {total} requests refused: {refused:?}",
        refused.len()
    );
    assert!(total > CLIENTS * ROTATIONS, "only {total} requests made");
    // Each cookie is re-issued at most once per rotation (a client may
    // sleep through one under load, so the lower bound is loose).
    let reissues = app.reissues().len();
    assert!(reissues >= CLIENTS * 2 * ROTATIONS / 2, "{reissues}");
    assert!(
        reissues <= CLIENTS * 2 * ROTATIONS,
        "re-issued more than once per rotation: {reissues}"
    );
    println!("{total} requests, {} re-issues, 0 refused", app.reissues().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_200_when_healthy_and_503_when_the_key_file_breaks() {
    let key = new_key();
    let app = TestApp::start(&[&key], Policy::default()).await;

    let reply = app.get("/ready", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["ready"], true);
    assert_eq!(body["signing_key"], key_id(&key));
    assert_eq!(body["verifying_keys"], serde_json::json!([key_id(&key)]));
    assert!(!reply.body.contains(&key), "no key material in the body");

    // A weak key is refused by the policy: degraded, the last good key keeps serving.
    std::fs::write(&app.keys_path, "short\n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let degraded = loop {
        let reply = app.get("/ready", &[]).await;
        if reply.status == 503 {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never degraded: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let body: serde_json::Value = serde_json::from_str(&degraded.body).unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["signing_key"], key_id(&key));
    assert!(body["consecutive_failures"].as_u64().unwrap() >= 1);
    assert!(
        !degraded.body.contains("short"),
        "no error text or material leaks"
    );
    let (session, _) = app.login("grace").await;
    assert_eq!(app.get("/me", &[("session", &session)]).await.status, 200);

    let next = new_key();
    app.rotate_to(&[&next, &key]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.get("/ready", &[]).await.status != 200 {
        assert!(std::time::Instant::now() < deadline, "never healthy again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first issue time of the Django session cookie below: an hour short of
/// the default two-week session age.
fn first_issue() -> std::time::SystemTime {
    std::time::SystemTime::now() - keyroll_django::session::SESSION_COOKIE_AGE + Duration::from_secs(3600)
}

/// Two hours from now: past the first issue time + the session age.
fn two_hours_on() -> std::time::SystemTime {
    std::time::SystemTime::now() + Duration::from_secs(7200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reissued_django_session_keeps_its_first_issue_time_and_expires_with_it() {
    use keyroll_django::SignedCookieSessions;
    let (old, new) = (new_key(), new_key());
    let only = |key: &str| Keyring::new(KeySet::single("k", KeyMaterial::from(key)).unwrap());
    let session = SignedCookieSessions::with_clock(only(&old), first_issue)
        .save(&serde_json::json!({"user": "dora"}))
        .unwrap();
    let app = TestApp::start(&[&new, &old], Policy::default()).await;
    let reply = app.get("/django/me", &[("sessionid", &session)]).await;
    assert_eq!(reply.status, 200);
    let reissued = reply.cookie("sessionid").expect("re-issued with the new key");

    let loaded = SignedCookieSessions::new(only(&new)).load(&reissued).unwrap();
    let issued = loaded.timestamp.unwrap();
    let expected = first_issue()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let got = issued.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(
        got.abs_diff(expected) <= 1,
        "issued {got}, first issue {expected}"
    );
    let later = SignedCookieSessions::with_clock(only(&new), two_hours_on);
    assert!(
        later.load(&reissued).is_err(),
        "the re-issued session expires at first issue + the session age"
    );
}
