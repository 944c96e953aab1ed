//! A small login app whose session cookie survives a live key rotation.
//!
//! ```text
//! keyroll generate > /tmp/web-keys          # or any 32+ character secret
//! cargo run --example web --features axum -- /tmp/web-keys
//! ```
//!
//! - `POST /login` (form `user=...`) sets a signed session cookie;
//! - `GET /me` reads it, says which key verified it, and re-issues it with
//!   the current key when an older key verified it;
//! - `POST /logout` removes it;
//! - `GET /ready` is the readiness probe (200 healthy, 503 degraded).
//!
//! Rotate while it runs by putting a new key on the first line of the key
//! file (`keyroll rotate --keys file:///tmp/web-keys`): the app picks it up
//! within milliseconds; cookies signed with the old key keep working and are
//! re-issued. The walkthrough with curl is in `docs/WEB.md`.

use std::collections::HashMap;
use std::time::Duration;

use keyroll::axum::axum::extract::Form;
use keyroll::axum::axum::routing::{get, post};
use keyroll::axum::axum::{self, Router};
use keyroll::axum::tower_cookies::Cookie;
use keyroll::axum::{CookieKeys, CookieManagerLayer, CookieRejection, HealthLayer, SignedCookies};

const SESSION: &str = "session";

async fn index() -> &'static str {
    "POST /login (user=NAME), GET /me, POST /logout, GET /ready\n"
}

async fn login(
    cookies: SignedCookies,
    Form(form): Form<HashMap<String, String>>,
) -> Result<String, CookieRejection> {
    let user = form.get("user").map(String::as_str).unwrap_or("anonymous");
    // Refused (503) once the keyring has failed closed: nothing signs then.
    cookies.add(SESSION, &format!("user={user}"))?;
    Ok(format!("welcome {user}\n"))
}

async fn me(cookies: SignedCookies) -> Result<String, CookieRejection> {
    let session = cookies.require(SESSION)?;
    Ok(format!(
        "{} (verified by key {}, {})\n",
        session.value, session.key.id, session.key.role
    ))
}

async fn logout(cookies: SignedCookies) -> &'static str {
    cookies.remove(SESSION);
    "bye\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: web KEY_FILE  (create one with `keyroll generate > KEY_FILE`)")?;
    let path = std::fs::canonicalize(&path).map_err(|e| format!("{path}: {e}"))?;
    let refresher = keyroll::Refresher::builder(keyroll::open(&format!("file://{}", path.display()))?)
        .interval(Duration::from_secs(30))
        .start()
        .await?;

    let keys = CookieKeys::builder(refresher.keyring().clone())
        .salt("keyroll-web-example")
        .max_age(Duration::from_secs(7 * 24 * 3600))
        // Plain HTTP on localhost: no `Secure` attribute. Keep the default behind TLS.
        .template(
            Cookie::build(("", ""))
                .path("/")
                .http_only(true)
                .same_site(keyroll::axum::tower_cookies::cookie::SameSite::Lax)
                .secure(false)
                .build(),
        )
        .on_reissue(|r| {
            eprintln!(
                "re-issued cookie {:?}: was verified by {} ({}), now signed by {}",
                r.name, r.verified_by.id, r.verified_by.role, r.signed_by
            )
        })
        .build()?;

    let app = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .layer(CookieManagerLayer::new())
        .layer(HealthLayer::new(refresher.clone()))
        .with_state(keys);

    let address = std::env::var("WEB_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("listening on http://{address}, keys from {}", path.display());
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    refresher.shutdown().await;
    Ok(())
}
