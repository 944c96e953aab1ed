//! A small login app served on a loopback port, its key file, and a plain
//! HTTP client that handles cookies by hand (so each test decides exactly
//! which cookie value it sends).

#![allow(dead_code)] // each test binary uses part of this harness

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Form;
use axum::routing::{get, post};
use keyroll_axum::tower_cookies::Cookie;
use keyroll_axum::{
    CookieKeys, CookieManagerLayer, CookieRejection, DjangoSession, HealthLayer, PrivateCookies, Reissue,
    SignedCookies,
};
use keyroll_core::{KeyMaterial, Policy, Refresher};
use keyroll_file::FileProvider;
use serde::Deserialize;
use serde_json::json;

/// A fresh random text key (44 characters, base64url).
pub fn new_key() -> String {
    String::from_utf8(keyroll_fernet::generate_key().expose_secret().to_vec()).expect("base64 is text")
}

/// The version id the file provider gives a text key: its fingerprint.
pub fn key_id(key: &str) -> String {
    KeyMaterial::from(key).fingerprint()
}

/// Replaces the key file atomically (write aside, rename over), the way
/// `keyroll rotate` and Kubernetes do, so the watcher never sees half a file.
pub fn write_keys(path: &Path, keys: &[&str]) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, format!("{}\n", keys.join("\n"))).expect("write key file");
    std::fs::rename(&aside, path).expect("rename key file");
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(
    signed: SignedCookies,
    private: PrivateCookies,
    Form(login): Form<Login>,
) -> Result<String, CookieRejection> {
    signed.add("session", &format!("user={}", login.user))?;
    private.add("prefs", &format!("theme=dark;owner={}", login.user))?;
    Ok(format!("welcome {}\n", login.user))
}

async fn me(signed: SignedCookies) -> Result<String, CookieRejection> {
    Ok(signed.require("session")?.value)
}

async fn remember(signed: SignedCookies) -> Result<String, CookieRejection> {
    Ok(signed.require("remember")?.value)
}

async fn prefs(private: PrivateCookies) -> Result<String, CookieRejection> {
    Ok(private.require("prefs")?.value)
}

async fn theme(private: PrivateCookies) -> Result<String, CookieRejection> {
    Ok(private.require("theme")?.value)
}

async fn django_login(session: DjangoSession, Form(login): Form<Login>) -> String {
    session
        .save(&json!({"user": login.user}))
        .expect("JSON serializes");
    format!("welcome {}\n", login.user)
}

async fn django_me(session: DjangoSession) -> Result<String, CookieRejection> {
    let data = session.require()?.value;
    Ok(data
        .get("user")
        .and_then(|u| u.as_str())
        .unwrap_or_default()
        .to_owned())
}

/// The app under test, running on a loopback port.
pub struct TestApp {
    pub base: String,
    pub keys_path: PathBuf,
    pub refresher: Refresher,
    pub cookie_keys: CookieKeys,
    pub reissues: Arc<Mutex<Vec<Reissue>>>,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

/// One response: status, body and the cookies it sets.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub set_cookies: Vec<Cookie<'static>>,
}

impl Reply {
    /// The value the response sets for cookie `name`, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies
            .iter()
            .rev()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }
}

impl TestApp {
    /// Serves the app with keys `keys` (first signs) under `policy`.
    pub async fn start(keys: &[&str], policy: Policy) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys_path = dir.path().join("keys");
        write_keys(&keys_path, keys);
        let refresher = Refresher::builder(FileProvider::new(&keys_path))
            .policy(policy)
            .interval(Duration::from_millis(500))
            .backoff(Duration::from_millis(20), Duration::from_millis(200))
            .start()
            .await
            .expect("refresher starts");
        let reissues = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&reissues);
        let cookie_keys = CookieKeys::builder(refresher.keyring().clone())
            .salt("e2e")
            .on_reissue(move |reissue| seen.lock().unwrap().push(reissue.clone()))
            .build()
            .expect("cookie keys");
        let app = Router::new()
            .route("/login", post(login))
            .route("/me", get(me))
            .route("/remember", get(remember))
            .route("/prefs", get(prefs))
            .route("/theme", get(theme))
            .route("/django/login", post(django_login))
            .route("/django/me", get(django_me))
            .layer(CookieManagerLayer::new())
            .layer(HealthLayer::new(refresher.clone()))
            .with_state(cookie_keys.clone());
        let listener = keyroll_testkit::ports::tokio_listener();
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("server runs");
        });
        keyroll_testkit::install_crypto_provider();
        Self {
            base,
            keys_path,
            refresher,
            cookie_keys,
            reissues,
            client: reqwest::Client::new(),
            _dir: dir,
            server,
        }
    }

    /// Rewrites the key file with `keys` and waits until the running app's
    /// keyring holds exactly those keys with the first one signing.
    pub async fn rotate_to(&self, keys: &[&str]) {
        write_keys(&self.keys_path, keys);
        let wanted: HashSet<String> = keys.iter().map(|k| key_id(k)).collect();
        let signing = key_id(keys[0]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let set = self.refresher.keyring().load();
            let held: HashSet<String> = set.keys().iter().map(|k| k.id().to_owned()).collect();
            if held == wanted && set.signing_key().id() == signing {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not pick up the new key file"
            );
            drop(set);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends `request` with `cookies` in one Cookie header.
    async fn send(&self, request: reqwest::RequestBuilder, cookies: &[(&str, &str)]) -> Reply {
        let request = if cookies.is_empty() {
            request
        } else {
            let header = cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            request.header("cookie", header)
        };
        let response = request.send().await.expect("request succeeds");
        let status = response.status().as_u16();
        let set_cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| Cookie::parse(v.to_str().expect("ASCII header").to_owned()).expect("valid Set-Cookie"))
            .collect();
        let body = response.text().await.expect("body");
        Reply {
            status,
            body,
            set_cookies,
        }
    }

    pub async fn get(&self, path: &str, cookies: &[(&str, &str)]) -> Reply {
        self.get_at(&self.base, path, cookies).await
    }

    pub async fn post_form(&self, path: &str, form: &str, cookies: &[(&str, &str)]) -> Reply {
        self.post_form_at(&self.base, path, form, cookies).await
    }

    /// GET from another server (the Django peer).
    pub async fn get_at(&self, base: &str, path: &str, cookies: &[(&str, &str)]) -> Reply {
        self.send(self.client.get(format!("{base}{path}")), cookies).await
    }

    /// POST a form to another server (the Django peer).
    pub async fn post_form_at(&self, base: &str, path: &str, form: &str, cookies: &[(&str, &str)]) -> Reply {
        let request = self
            .client
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        self.send(request, cookies).await
    }

    /// Logs `user` in and returns the signed session and private prefs cookies.
    pub async fn login(&self, user: &str) -> (String, String) {
        let reply = self.post_form("/login", &format!("user={user}"), &[]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        (
            reply.cookie("session").expect("session cookie set"),
            reply.cookie("prefs").expect("prefs cookie set"),
        )
    }

    pub fn reissues(&self) -> Vec<Reissue> {
        self.reissues.lock().unwrap().clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}
