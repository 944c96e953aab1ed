//! How the provider gets a Vault token, and keeps it valid.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use keyroll_core::ProviderError;
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;
use vaultrs::api::AuthInfo;
use vaultrs::client::VaultClient;
use zeroize::Zeroizing;

use crate::client::{Authed, api_errors, provider_error, status_of};

/// Where the Kubernetes service-account token is mounted in a pod.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// A secret the provider reads when it needs it: a token, a role id, a secret
/// id, a JWT. Values from files are read at every use, so a rotated file (a
/// Vault Agent sink, a re-issued secret id) is picked up. `Debug` shows where
/// the secret comes from, never the secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// A value given directly.
    Value(Zeroizing<String>),
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file, surrounding whitespace trimmed.
    File(PathBuf),
}

impl Credential {
    /// A value given directly.
    pub fn value(secret: impl Into<String>) -> Self {
        Self::Value(Zeroizing::new(secret.into()))
    }

    /// The environment variable `name`, read at every use.
    pub fn env(name: impl Into<String>) -> Self {
        Self::Env(name.into())
    }

    /// The file at `path`, read at every use.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File(path.into())
    }

    /// Reads the secret now. `what` names it in errors ("the Vault token").
    pub(crate) fn read(&self, what: &str) -> Result<Zeroizing<String>, ProviderError> {
        let value = match self {
            Self::Value(value) => value.clone(),
            Self::Env(name) => Zeroizing::new(std::env::var(name).map_err(|_| {
                ProviderError::config(format!(
                    "{what} is missing: environment variable {name} is not set"
                ))
            })?),
            Self::File(path) => Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                ProviderError::config(format!("{what} is missing: cannot read {}: {e}", path.display()))
            })?),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(ProviderError::config(format!("{what} is empty ({self:?})")));
        }
        Ok(Zeroizing::new(trimmed.to_owned()))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Credential::Value(redacted)"),
            Self::Env(name) => write!(f, "Credential::Env({name})"),
            Self::File(path) => write!(f, "Credential::File({})", path.display()),
        }
    }
}

/// How the provider authenticates to Vault.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Auth {
    /// A token, such as `VAULT_TOKEN` or a Vault Agent sink file. The
    /// credential is read before every request, so a sink file rewritten by
    /// the agent takes effect at once.
    Token(Credential),
    /// AppRole login (`auth/<mount>/login`) with a role id and a secret id.
    AppRole {
        /// Where the AppRole method is mounted (default `approle`).
        mount: String,
        /// The role id.
        role_id: Credential,
        /// The secret id.
        secret_id: Credential,
    },
    /// Kubernetes login (`auth/<mount>/login`) with a service-account JWT.
    Kubernetes {
        /// Where the Kubernetes method is mounted (default `kubernetes`).
        mount: String,
        /// The Vault role bound to the service account.
        role: String,
        /// The service-account JWT (default: the pod's mounted token).
        jwt: Credential,
    },
}

impl Auth {
    /// Token auth with `token`.
    pub fn token(token: Credential) -> Self {
        Self::Token(token)
    }

    /// AppRole login at the default mount `approle`.
    pub fn app_role(role_id: Credential, secret_id: Credential) -> Self {
        Self::AppRole {
            mount: "approle".to_owned(),
            role_id,
            secret_id,
        }
    }

    /// Kubernetes login at the default mount `kubernetes` as `role`, with the
    /// pod's service-account token ([`SERVICE_ACCOUNT_TOKEN`]).
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".to_owned(),
            role: role.into(),
            jwt: Credential::file(SERVICE_ACCOUNT_TOKEN),
        }
    }

    /// Kubernetes login reading the JWT from `jwt` instead.
    pub fn kubernetes_with_jwt(role: impl Into<String>, jwt: Credential) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".to_owned(),
            role: role.into(),
            jwt,
        }
    }

    /// The same method mounted at `mount` (no effect on token auth).
    pub fn with_mount(mut self, new_mount: impl Into<String>) -> Self {
        match &mut self {
            Self::AppRole { mount, .. } | Self::Kubernetes { mount, .. } => *mount = new_mount.into(),
            Self::Token(_) => {}
        }
        self
    }

    /// The default: `VAULT_TOKEN`, or the vault CLI's `~/.vault-token` when
    /// the variable is not set and that file exists.
    pub(crate) fn default_token() -> Self {
        if std::env::var_os("VAULT_TOKEN").is_none()
            && let Some(home) = std::env::var_os("HOME")
        {
            let file = Path::new(&home).join(".vault-token");
            if file.is_file() {
                return Self::Token(Credential::File(file));
            }
        }
        Self::Token(Credential::env("VAULT_TOKEN"))
    }

    /// A short name for logs and `Debug`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::AppRole { .. } => "approle",
            Self::Kubernetes { .. } => "kubernetes",
        }
    }

    fn can_login(&self) -> bool {
        !matches!(self, Self::Token(_))
    }
}

/// A token in use and what Vault said about its lifetime.
struct Lease {
    token: Zeroizing<String>,
    /// When it stops working; `None` for tokens without expiry (root).
    expires: Option<Instant>,
    /// When to renew it (or log in again).
    renew_at: Option<Instant>,
    renewable: bool,
    /// The TTL granted at login; a renewal granting less means the token is
    /// capped by its maximum TTL and only a new login helps.
    granted: Duration,
}

/// How long until a lease of `ttl` expires and is renewed (the fuzz target's entry).
#[cfg(feature = "fuzzing")]
pub(crate) fn lease_times(ttl: Duration) -> (Option<Duration>, Option<Duration>) {
    let lease = Lease::new(Zeroizing::new(String::new()), ttl, true);
    let now = Instant::now();
    (
        lease.expires.map(|at| at.saturating_duration_since(now)),
        lease.renew_at.map(|at| at.saturating_duration_since(now)),
    )
}

impl Lease {
    fn new(token: Zeroizing<String>, ttl: Duration, renewable: bool) -> Self {
        let mut lease = Self {
            token,
            expires: None,
            renew_at: None,
            renewable,
            granted: ttl,
        };
        lease.extend(ttl);
        lease
    }

    fn from_login(info: &AuthInfo) -> Self {
        Self::new(
            Zeroizing::new(info.client_token.clone()),
            Duration::from_secs(info.lease_duration),
            info.renewable,
        )
    }

    /// Records a (re)newed TTL: act again after two thirds of it, as Vault
    /// Agent does.
    fn extend(&mut self, ttl: Duration) {
        let now = Instant::now();
        if ttl.is_zero() {
            self.expires = None;
            self.renew_at = None;
        } else {
            // A TTL from the server (up to 2^64 s) may not fit in an
            // `Instant`: such a token never expires for us.
            self.expires = now.checked_add(ttl);
            self.renew_at = now.checked_add(ttl / 3 * 2);
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| now >= at)
    }
}

/// Keeps a valid token for one provider: logs in, adopts changed token
/// files, renews before expiry and logs in again when renewal stops helping.
/// One caller at a time does any of this (the lease lock), the others wait
/// and use its result.
pub(crate) struct Session {
    auth: Auth,
    connection: Arc<VaultClient>,
    lease: Mutex<Option<Lease>>,
    /// Wakes the renewal task when the lease changes or the session ends.
    changed: Arc<Notify>,
    keeper: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Session {
    pub(crate) fn new(auth: Auth, connection: Arc<VaultClient>) -> Self {
        Self {
            auth,
            connection,
            lease: Mutex::new(None),
            changed: Arc::new(Notify::new()),
            keeper: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    pub(crate) fn connection(&self) -> &Arc<VaultClient> {
        &self.connection
    }

    /// A token that is valid as far as this process knows: logs in, re-reads
    /// the token credential, renews or logs in again as needed.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<Zeroizing<String>, ProviderError> {
        let token = {
            let mut lease = self.lease.lock().await;
            self.refresh_locked(&mut lease).await?;
            lease.as_ref().expect("refresh leaves a lease").token.clone()
        };
        self.start_keeper();
        Ok(token)
    }

    /// Called after Vault answered `rejected` with 403: gets a different
    /// token if one can be had (a new login, a changed token file). Returns
    /// whether the caller should retry.
    pub(crate) async fn replace_rejected(self: &Arc<Self>, rejected: &str) -> Result<bool, ProviderError> {
        let mut lease = self.lease.lock().await;
        if lease.as_ref().is_some_and(|l| *l.token != rejected) {
            // Someone else replaced it meanwhile.
            return Ok(true);
        }
        match &self.auth {
            Auth::Token(credential) => {
                let current = credential.read("the Vault token")?;
                if *current == rejected {
                    return Ok(false);
                }
                *lease = Some(self.adopt(current).await?);
            }
            _ => {
                tracing::info!(
                    auth = self.auth.kind(),
                    "Vault refused the token; logging in again"
                );
                *lease = Some(self.login().await?);
            }
        }
        self.changed.notify_one();
        Ok(true)
    }

    async fn refresh_locked(&self, lease: &mut Option<Lease>) -> Result<(), ProviderError> {
        let now = Instant::now();
        match &self.auth {
            Auth::Token(credential) => {
                let current = credential.read("the Vault token")?;
                if lease.as_ref().is_none_or(|l| l.token != current) {
                    *lease = Some(self.adopt(current).await?);
                    self.changed.notify_one();
                }
            }
            _ => {
                if lease.as_ref().is_none_or(|l| l.expired(now)) {
                    *lease = Some(self.login().await?);
                    self.changed.notify_one();
                }
            }
        }
        let current = lease.as_mut().expect("a lease was just set");
        if current.renew_at.is_some_and(|at| now >= at) {
            self.renew_or_login(current).await?;
            self.changed.notify_one();
        }
        Ok(())
    }

    /// Renews the token, or logs in again when renewal is refused or no
    /// longer extends it (maximum TTL reached).
    async fn renew_or_login(&self, lease: &mut Lease) -> Result<(), ProviderError> {
        let client = Authed::new(&self.connection, &lease.token);
        let renewed = if lease.renewable {
            Some(vaultrs::token::renew_self(&client, None).await)
        } else {
            None
        };
        match renewed {
            Some(Ok(info)) => {
                let ttl = Duration::from_secs(info.lease_duration);
                if ttl >= lease.granted || !self.auth.can_login() {
                    tracing::debug!(ttl_secs = ttl.as_secs(), "Vault token renewed");
                    lease.renewable = info.renewable;
                    lease.extend(ttl);
                    if ttl < lease.granted {
                        // Capped by its max TTL and nothing to log in with: renewing
                        // again cannot help; it ends when it ends.
                        lease.renew_at = None;
                    }
                    return Ok(());
                }
                tracing::info!(
                    ttl_secs = ttl.as_secs(),
                    "Vault token reached its maximum TTL; logging in again"
                );
            }
            Some(Err(error)) => {
                let error = provider_error("renewing the token", &error);
                if !self.auth.can_login() {
                    tracing::warn!(error = %error, "cannot renew the Vault token");
                    // Try again later, but before it expires.
                    lease.renew_at = lease
                        .expires
                        .map(|at| Instant::now() + at.saturating_duration_since(Instant::now()) / 2);
                    return Ok(());
                }
                tracing::info!(error = %error, "Vault refused to renew the token; logging in again");
            }
            None if !self.auth.can_login() => {
                lease.renew_at = None;
                return Ok(());
            }
            None => {}
        }
        match self.login().await {
            Ok(fresh) => {
                *lease = fresh;
                Ok(())
            }
            Err(error) if !lease.expired(Instant::now()) => {
                // The old token still works for a while: keep it, retry soon.
                tracing::warn!(error = %error, "Vault login failed; keeping the current token for now");
                lease.renew_at = Some(Instant::now() + Duration::from_secs(1));
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Learns the lifetime of a token given to us (`lookup-self`).
    async fn adopt(&self, token: Zeroizing<String>) -> Result<Lease, ProviderError> {
        let client = Authed::new(&self.connection, &token);
        match vaultrs::token::lookup_self(&client).await {
            Ok(info) => {
                let mut lease = Lease::new(
                    token,
                    Duration::from_secs(info.ttl),
                    info.renewable.unwrap_or(false),
                );
                lease.granted = Duration::from_secs(info.creation_ttl.max(info.ttl));
                Ok(lease)
            }
            // A token without permission to look itself up can still read
            // secrets; it just does not get renewed.
            Err(error) if status_of(&error) == Some(403) => {
                tracing::debug!("token cannot look itself up; it will not be renewed");
                Ok(Lease::new(token, Duration::ZERO, false))
            }
            Err(error) => Err(provider_error("looking up the token", &error)),
        }
    }

    async fn login(&self) -> Result<Lease, ProviderError> {
        let client = Authed::new(&self.connection, "");
        let (result, what) = match &self.auth {
            Auth::Token(_) => unreachable!("token auth never logs in"),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let role_id = role_id.read("the AppRole role id")?;
                let secret_id = secret_id.read("the AppRole secret id")?;
                (
                    vaultrs::auth::approle::login(&client, mount, &role_id, &secret_id).await,
                    format!("AppRole login at auth/{mount}"),
                )
            }
            Auth::Kubernetes { mount, role, jwt } => {
                let jwt = jwt.read("the Kubernetes service-account token")?;
                (
                    vaultrs::auth::kubernetes::login(&client, mount, role, &jwt).await,
                    format!("Kubernetes login at auth/{mount} as role {role}"),
                )
            }
        };
        match result {
            Ok(info) => {
                tracing::info!(
                    auth = self.auth.kind(),
                    ttl_secs = info.lease_duration,
                    renewable = info.renewable,
                    "logged in to Vault"
                );
                Ok(Lease::from_login(&info))
            }
            Err(error) if matches!(status_of(&error), Some(400 | 401 | 403)) => {
                let detail = match &error {
                    vaultrs::error::ClientError::APIError { errors, .. } => api_errors(errors),
                    _ => String::new(),
                };
                Err(ProviderError::permission_denied(format!(
                    "Vault refused the {what} ({detail}); check the credentials and the role"
                )))
            }
            Err(error) => Err(provider_error(&what, &error)),
        }
    }

    /// Starts the background task that renews the token before it expires,
    /// once, when running inside a Tokio runtime.
    fn start_keeper(self: &Arc<Self>) {
        let mut keeper = self.keeper.lock().unwrap_or_else(|e| e.into_inner());
        if keeper.is_some() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            *keeper = Some(runtime.spawn(keep(Arc::downgrade(self), Arc::clone(&self.changed))));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(task) = self.keeper.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// Renews the session's token at its renewal moment, so a token with a TTL
/// shorter than the poll interval stays valid. Holds only a weak reference:
/// it ends with the session.
async fn keep(session: Weak<Session>, changed: Arc<Notify>) {
    let mut retry = Duration::from_millis(500);
    loop {
        let renew_at = {
            let Some(session) = session.upgrade() else { return };
            let lease = session.lease.lock().await;
            lease.as_ref().and_then(|l| l.renew_at)
        };
        match renew_at {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = changed.notified() => continue,
                }
            }
            None => {
                changed.notified().await;
                continue;
            }
        }
        let Some(session) = session.upgrade() else { return };
        match session.token().await {
            Ok(_) => retry = Duration::from_millis(500),
            Err(error) => {
                tracing::warn!(error = %error, "keeping the Vault token valid failed; retrying");
                drop(session);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(30));
            }
        }
    }
}
