//! Django-compatible session cookies: the `signed_cookies` session backend.

use keyroll_core::Verified;
use serde::Serialize;
use serde_json::{Map, Value};
use tower_cookies::Cookies;

use crate::CookieRejection;
use crate::keys::{CookieKeys, CookieKind, should_reissue};

/// The session cookie of Django's `signed_cookies` session backend
/// (`SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"`),
/// byte-compatible with Django 5.2: a Django app and this service sharing a
/// key file (Django's `SECRET_KEY` and `SECRET_KEY_FALLBACKS`) read each
/// other's sessions.
///
/// The cookie name is [`CookieKeysBuilder::django_session_cookie`](crate::CookieKeysBuilder::django_session_cookie)
/// (default `sessionid`) and the maximum age
/// [`django_session_age`](crate::CookieKeysBuilder::django_session_age)
/// (default two weeks). Django's format does not bind the cookie name into
/// the signature (its session salt is fixed); use [`SignedCookies`](crate::SignedCookies)
/// when Django compatibility is not needed.
///
/// ```
/// use axum::{Router, routing::get};
/// use keyroll_axum::{CookieKeys, CookieRejection, DjangoSession};
///
/// async fn me(session: DjangoSession) -> Result<String, CookieRejection> {
///     let data = session.require()?.value;
///     Ok(format!("user {}", data.get("user").and_then(|u| u.as_str()).unwrap_or("?")))
/// }
/// # let keyring = keyroll_core::Keyring::new(keyroll_core::KeySet::single("v1", keyroll_core::KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(tower_cookies::CookieManagerLayer::new())
///     .with_state(CookieKeys::builder(keyring).build().unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct DjangoSession {
    cookies: Cookies,
    keys: CookieKeys,
}

cookie_extractor!(
    DjangoSession,
    "The Django session of `cookies` (for use outside an extractor)."
);

impl DjangoSession {
    /// The session data, or `None` when there is no valid session cookie
    /// (Django then starts an empty session). When a superseded key
    /// verified it, the cookie is saved again with the current key in this
    /// response, keeping its first issue time (so it still expires at first
    /// issue + the session age), and the re-issue hook is called.
    pub fn load(&self) -> Option<Verified<Map<String, Value>>> {
        self.require().ok()
    }

    /// Like [`load`](Self::load), with a [`CookieRejection`] (401) instead of `None`.
    pub fn require(&self) -> Result<Verified<Map<String, Value>>, CookieRejection> {
        let name = self.keys.django_session_cookie_name();
        let cookie = self.cookies.get(name).ok_or(CookieRejection::Missing)?;
        let session = match self.keys.inner.django.load(cookie.value()) {
            Ok(session) => session,
            Err(error) => {
                tracing::debug!(cookie = name, %error, "Django session cookie refused");
                return Err(CookieRejection::Invalid);
            }
        };
        if should_reissue(&session.key) {
            // Re-signed with the current key, keeping the first issue time as
            // signed and private cookies do: re-issuing never extends a session.
            let issued = session.timestamp.unwrap_or_else(std::time::SystemTime::now);
            if let Ok(value) = self.keys.inner.django.save_issued(&session.value, issued) {
                self.cookies.add(self.keys.cookie(name, value));
                self.keys
                    .report(name, CookieKind::DjangoSession, session.key.clone());
            }
        }
        Ok(session)
    }

    /// Saves `session` as the session cookie, as Django's
    /// `SessionStore.save` does (compressed `signing.dumps`).
    pub fn save<T: Serialize + ?Sized>(&self, session: &T) -> Result<(), keyroll_django::Error> {
        let value = self.keys.inner.django.save(session)?;
        let name = self.keys.django_session_cookie_name();
        self.cookies.add(self.keys.cookie(name, value));
        Ok(())
    }

    /// Ends the session: removes the cookie (Django's `flush`).
    pub fn flush(&self) {
        let name = self.keys.django_session_cookie_name();
        self.cookies.remove(self.keys.cookie(name, String::new()));
    }
}
