//! What the remote-store providers (Vault, AWS Secrets Manager, GCP Secret
//! Manager) share: one set of connection settings with one check
//! ([`Connection`], and [`connection_setters!`](crate::connection_setters)
//! for the builders' setters), one endpoint check, one reader of a JSON field
//! that wipes what it parsed, and one cache of the versions already fetched.
//!
//! These are for provider authors; a service author never needs them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{KeyMaterial, KeySource, ProviderError};

mod json;

pub use json::{FieldProblem, JsonSecret};

/// The one name, in every remote store's URI (`?insecure_http=true`) and
/// builder (`allow_insecure_http`), that allows plain `http://` to a host
/// other than this machine.
pub const INSECURE_HTTP: &str = "insecure_http";

/// The value of `?insecure_http=` in `source`: `true` or `false`, `false`
/// when absent.
///
/// # Errors
/// [`Config`](crate::ProviderErrorKind::Config) for another value.
pub fn insecure_http_param(source: &KeySource) -> Result<bool, ProviderError> {
    match source.param(INSECURE_HTTP) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ProviderError::config(format!(
            "`{source}`: {INSECURE_HTTP} must be true or false, not `{other}`"
        ))),
    }
}

/// The connection settings every remote store's builder takes, as given:
/// the endpoint, whether plain HTTP may leave this machine, the timeout of
/// one attempt and the attempts per call. [`check`](Self::check) validates
/// them the same way for every store; a builder keeps one in a field named
/// `connection` and gets its setters from
/// [`connection_setters!`](crate::connection_setters).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The endpoint (a local server, a private endpoint), if not the store's
    /// default.
    pub endpoint: Option<String>,
    /// Whether plain `http://` to another host is allowed ([`INSECURE_HTTP`]).
    pub allow_insecure_http: bool,
    /// Timeout of one attempt of one call.
    pub attempt_timeout: Option<Duration>,
    /// Attempts per call.
    pub max_attempts: Option<u32>,
}

/// A store's defaults for what a [`Connection`] leaves unset.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionDefaults {
    /// The default [`Connection::attempt_timeout`].
    pub attempt_timeout: Duration,
    /// The default [`Connection::max_attempts`].
    pub max_attempts: u32,
}

/// A [`Connection`] that passed [`Connection::check`].
#[derive(Debug, Clone)]
pub struct CheckedConnection {
    /// The endpoint, checked, if one was given.
    pub endpoint: Option<Endpoint>,
    /// As given.
    pub allow_insecure_http: bool,
    /// More than zero.
    pub attempt_timeout: Duration,
    /// At least 1.
    pub max_attempts: u32,
}

impl Connection {
    /// Fills in `defaults` and checks the settings of `store`, whose requests
    /// carry `exposed` (see [`Endpoint::check`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use keyroll_core::remote::{Connection, ConnectionDefaults};
    ///
    /// let defaults = ConnectionDefaults { attempt_timeout: Duration::from_secs(5), max_attempts: 2 };
    /// let checked = Connection::default().check("Vault", "the token", defaults)?;
    /// assert_eq!(checked.max_attempts, 2);
    /// let zero = Connection { max_attempts: Some(0), ..Connection::default() };
    /// assert!(zero.check("Vault", "the token", defaults).is_err());
    /// # Ok::<(), keyroll_core::ProviderError>(())
    /// ```
    ///
    /// # Errors
    /// [`Config`](crate::ProviderErrorKind::Config) for 0 attempts, a zero
    /// timeout, or an endpoint [`Endpoint::check`] refuses. Zero is never
    /// quietly read as "the default" or clamped to 1.
    pub fn check(
        &self,
        store: &str,
        exposed: &str,
        defaults: ConnectionDefaults,
    ) -> Result<CheckedConnection, ProviderError> {
        let max_attempts = self.max_attempts.unwrap_or(defaults.max_attempts);
        if max_attempts == 0 {
            return Err(ProviderError::config(format!(
                "{store}: max_attempts must be at least 1"
            )));
        }
        let attempt_timeout = self.attempt_timeout.unwrap_or(defaults.attempt_timeout);
        if attempt_timeout.is_zero() {
            return Err(ProviderError::config(format!(
                "{store}: attempt_timeout must be more than 0"
            )));
        }
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|url| {
                Endpoint::check(
                    store,
                    exposed,
                    url.trim_end_matches('/'),
                    self.allow_insecure_http,
                )
            })
            .transpose()?;
        Ok(CheckedConnection {
            endpoint,
            allow_insecure_http: self.allow_insecure_http,
            attempt_timeout,
            max_attempts,
        })
    }
}

/// The setters of a remote store's builder for its [`Connection`] (a field
/// named `connection`), written once for every store. Name the ones the
/// store takes, any of `endpoint`, `allow_insecure_http`, `attempt_timeout`
/// and `max_attempts`, inside the builder's `impl` block:
///
/// ```
/// use keyroll_core::remote::Connection;
///
/// #[derive(Default)]
/// pub struct MyStoreBuilder {
///     connection: Connection,
/// }
///
/// impl MyStoreBuilder {
///     keyroll_core::connection_setters!(endpoint, allow_insecure_http, attempt_timeout, max_attempts);
/// }
///
/// let builder = MyStoreBuilder::default().endpoint("http://127.0.0.1:8200").max_attempts(3);
/// assert_eq!(builder.connection.max_attempts, Some(3));
/// ```
///
/// The builder's `build` calls [`Connection::check`], so 0 attempts or a
/// zero timeout is an error there, for every store alike.
#[macro_export]
macro_rules! connection_setters {
    ($($setter:ident),+ $(,)?) => {
        $($crate::connection_setters!(@ $setter);)+
    };
    (@ endpoint) => {
        /// Sends requests to `url` instead of the store's default endpoint (a
        /// local server, a private endpoint). Plain `http://` is refused to a
        /// host other than this machine unless
        /// [`allow_insecure_http`](Self::allow_insecure_http); user info
        /// (`user:password@`) is always refused.
        pub fn endpoint(mut self, url: impl Into<String>) -> Self {
            self.connection.endpoint = Some(url.into());
            self
        }
    };
    (@ allow_insecure_http) => {
        /// Allows a plain `http://` endpoint on another host
        /// (`?insecure_http=true` in the URI): the credentials and the keys
        /// then cross the network in clear. Default: refused, except to
        /// loopback.
        pub fn allow_insecure_http(mut self, allow: bool) -> Self {
            self.connection.allow_insecure_http = allow;
            self
        }
    };
    (@ attempt_timeout) => {
        /// Timeout of one attempt of one request (default: this crate's
        /// `DEFAULT_ATTEMPT_TIMEOUT`); zero is refused by `build`.
        pub fn attempt_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.connection.attempt_timeout = Some(timeout);
            self
        }
    };
    (@ max_attempts) => {
        /// Attempts per call, at least 1 (default: this crate's
        /// `DEFAULT_MAX_ATTEMPTS`); 0 is refused by `build`.
        pub fn max_attempts(mut self, attempts: u32) -> Self {
            self.connection.max_attempts = Some(attempts);
            self
        }
    };
}

/// Setters of optional builder settings, written once: for each
/// `name: Type,` (or `name: impl Type,`), with its doc comment, a method
/// `name(value: Type)` (or `name(value: impl Into<Type>)`) that stores
/// `Some(value)` in the builder's field `name`, an `Option<Type>`. Invoke it
/// inside the builder's `impl` block.
///
/// ```
/// #[derive(Default)]
/// pub struct MyStoreBuilder {
///     field: Option<String>,
///     max_versions: Option<usize>,
/// }
///
/// impl MyStoreBuilder {
///     keyroll_core::option_setters! {
///         /// The field that holds the key.
///         field: impl String,
///         /// How many versions to report at most.
///         max_versions: usize,
///     }
/// }
///
/// let builder = MyStoreBuilder::default().field("key").max_versions(3);
/// assert_eq!(builder.field.as_deref(), Some("key"));
/// assert_eq!(builder.max_versions, Some(3));
/// ```
#[macro_export]
macro_rules! option_setters {
    () => {};
    ($(#[$doc:meta])* $name:ident: impl $ty:ty, $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$name = Some(value.into());
            self
        }
        $crate::option_setters!($($rest)*);
    };
    ($(#[$doc:meta])* $name:ident: $ty:ty, $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = Some(value);
            self
        }
        $crate::option_setters!($($rest)*);
    };
}

/// A store endpoint that passed [`Endpoint::check`]: an `http://` or
/// `https://` URL without credentials in it, and plain HTTP only to a
/// loopback host unless explicitly allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    host: String,
    plaintext: bool,
}

impl Endpoint {
    /// Checks `url`, the endpoint of `store` (such as "Vault"), whose requests
    /// carry `exposed` (such as "the Vault token").
    ///
    /// - Only `http://` and `https://` URLs are accepted.
    /// - User info (`user:password@host`) is refused, and the message never
    ///   shows it: credentials belong in the store's own settings, and a URL
    ///   is echoed in errors, logs and `source()`.
    /// - Plain `http://` to a host that is not loopback (`localhost`,
    ///   `127.0.0.0/8`, `::1`) is refused unless `allow_insecure_http`
    ///   ([`INSECURE_HTTP`]); any `http://` endpoint is accepted with one
    ///   `tracing` warning naming what crosses the network in clear.
    ///
    /// ```
    /// use keyroll_core::remote::Endpoint;
    ///
    /// let local = Endpoint::check("Vault", "the Vault token", "http://127.0.0.1:8200", false)?;
    /// assert!(local.is_plaintext());
    /// assert!(Endpoint::check("Vault", "the Vault token", "http://vault.internal:8200", false).is_err());
    /// assert!(Endpoint::check("Vault", "the Vault token", "http://vault.internal:8200", true).is_ok());
    /// let err = Endpoint::check("Vault", "the Vault token", "https://u:s3cr3t@vault:8200", false).unwrap_err();
    /// assert!(!err.to_string().contains("s3cr3t"));
    /// # Ok::<(), keyroll_core::ProviderError>(())
    /// ```
    ///
    /// # Errors
    /// [`Config`](crate::ProviderErrorKind::Config) for each refusal above
    /// and for a URL without a host.
    pub fn check(
        store: &str,
        exposed: &str,
        url: &str,
        allow_insecure_http: bool,
    ) -> Result<Self, ProviderError> {
        let shown = redact_userinfo(url);
        let (plaintext, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            _ => {
                return Err(ProviderError::config(format!(
                    "the {store} endpoint `{shown}` must be an https:// URL (or http:// to a server on this machine)"
                )));
            }
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if authority.contains('@') {
            return Err(ProviderError::config(format!(
                "the {store} endpoint `{shown}` holds credentials (user:password@); remove them and give \
                 credentials through the {store} settings instead"
            )));
        }
        let host = host_of(authority);
        if host.is_empty() {
            return Err(ProviderError::config(format!(
                "the {store} endpoint `{shown}` names no host"
            )));
        }
        let loopback = is_loopback(host);
        if plaintext && !loopback && !allow_insecure_http {
            return Err(ProviderError::config(format!(
                "refusing plain http:// to {host}: {exposed} and the keys would cross the network in clear. \
                 Use https://, or, on a network you trust, allow it explicitly with `{INSECURE_HTTP}=true` \
                 in the URI (or the builder's allow_insecure_http)"
            )));
        }
        if plaintext {
            tracing::warn!(
                endpoint = %url,
                loopback,
                "{store} over plain http://: {exposed} and the keys are sent in clear; use https:// \
                 outside a development machine"
            );
        }
        Ok(Self {
            url: url.to_owned(),
            host: host.to_owned(),
            plaintext,
        })
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The host, without port (IPv6 addresses without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether requests go over plain HTTP.
    pub fn is_plaintext(&self) -> bool {
        self.plaintext
    }
}

/// The host of an authority `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == IpAddr::V6(Ipv6Addr::LOCALHOST))
}

/// `text` with the user info of every URL in it (`scheme://user:pass@host`)
/// replaced by `***`, for messages and logs. Text without `://…@` comes back
/// unchanged (borrowed).
///
/// ```
/// use keyroll_core::remote::redact_userinfo;
///
/// assert_eq!(
///     redact_userinfo("aws-sm://app?endpoint=http://u:pw@h:4566&region=x"),
///     "aws-sm://app?endpoint=http://***@h:4566&region=x"
/// );
/// assert_eq!(redact_userinfo("vault://vault:8200/secret/app"), "vault://vault:8200/secret/app");
/// ```
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let rest = &text[start..];
        let end = rest
            .find(|c: char| "/?#&`'\"<>".contains(c) || c.is_whitespace())
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            out.push_str(&text[done..start]);
            out.push_str("***");
            done = start + at;
        }
        from = start;
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// The versions a provider already fetched, by a key of its choice (a
/// version id, a number and creation time): store contents of a version never
/// change, so each is read once. Shared by clones of a provider and kept
/// across fetches, including a fetch that was cut short (a timeout, an
/// error): what was read stays read.
#[derive(Debug)]
pub struct FetchedVersions<K, V = KeyMaterial> {
    held: Mutex<HashMap<K, V>>,
}

impl<K, V> Default for FetchedVersions<K, V> {
    fn default() -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> FetchedVersions<K, V> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A version read before.
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    /// Remembers a version just read.
    pub fn insert(&self, key: K, value: V) {
        self.lock().insert(key, value);
    }

    /// Forgets a version.
    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Keeps only the versions `keep` says yes to (what the store still
    /// reports): the material of the others leaves memory.
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        self.lock().retain(|key, _| keep(key));
    }

    /// How many versions are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
