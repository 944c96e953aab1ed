//! Django's `signed_cookies` session backend: the whole session, signed, in
//! the session cookie (`SESSION_ENGINE =
//! "django.contrib.sessions.backends.signed_cookies"`).

use std::time::{Duration, SystemTime};

use keyroll_core::{Keyring, Verified};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Error, SignerBuilder, TimestampSigner};

/// The salt of the `signed_cookies` session backend.
pub const SESSION_SALT: &str = "django.contrib.sessions.backends.signed_cookies";

/// Django's default `SESSION_COOKIE_AGE`: two weeks.
pub const SESSION_COOKIE_AGE: Duration = Duration::from_secs(60 * 60 * 24 * 7 * 2);

/// Reads and writes session cookies of Django's `signed_cookies` backend
/// (JSON serializer, the default).
///
/// ```
/// use keyroll_core::{KeyMaterial, KeySet, Keyring};
/// use keyroll_django::SignedCookieSessions;
///
/// let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("a sufficiently long secret key, 32+ bytes")).unwrap());
/// let sessions = SignedCookieSessions::new(keyring);
/// let cookie = sessions.save(&serde_json::json!({"_auth_user_id": "42"})).unwrap();
/// let session = sessions.load(&cookie).unwrap();
/// assert_eq!(session.value["_auth_user_id"], "42");
/// ```
#[derive(Debug)]
pub struct SignedCookieSessions {
    signer: TimestampSigner,
    max_age: Duration,
}

impl SignedCookieSessions {
    /// Sessions signed by `keyring`, valid for [`SESSION_COOKIE_AGE`].
    pub fn new(keyring: Keyring) -> Self {
        Self::from_builder(TimestampSigner::builder(keyring))
    }

    /// The same, reading time from `clock` (for tests).
    pub fn with_clock(keyring: Keyring, clock: fn() -> SystemTime) -> Self {
        Self::from_builder(TimestampSigner::builder(keyring).clock(clock))
    }

    fn from_builder(builder: SignerBuilder<TimestampSigner>) -> Self {
        let signer = builder
            .salt(SESSION_SALT)
            .build()
            .expect("the default separator is safe");
        Self {
            signer,
            max_age: SESSION_COOKIE_AGE,
        }
    }

    /// Accepts sessions up to `max_age` old (Django's `SESSION_COOKIE_AGE`).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The session data in a session cookie value (`SessionStore.load`).
    pub fn load(&self, cookie_value: &str) -> Result<Verified<Map<String, Value>>, Error> {
        self.signer.verify_object(cookie_value, Some(self.max_age))
    }

    /// The session cookie value for `session` (`SessionStore.save`): a
    /// compressed `signing.dumps`.
    pub fn save<T: Serialize + ?Sized>(&self, session: &T) -> Result<String, Error> {
        self.signer.sign_object(session, true)
    }

    /// The session cookie value for `session` with the current key but the
    /// first issue time `issued`: what re-issuing a session verified with a
    /// superseded key writes, so that it still expires at `issued` +
    /// max age and a stolen cookie cannot be kept alive by key rotations.
    pub fn save_issued<T: Serialize + ?Sized>(
        &self,
        session: &T,
        issued: SystemTime,
    ) -> Result<String, Error> {
        self.signer.sign_object_issued(session, true, issued)
    }
}
