//! A Google Cloud Secret Manager v1 REST server for tests.
//!
//! No installable emulator exists, so this is one, written to the public REST
//! reference (`https://cloud.google.com/secret-manager/docs/reference/rest`)
//! for the methods keyroll uses:
//!
//! | method | HTTP |
//! | --- | --- |
//! | `projects.secrets.create` | `POST /v1/{parent=projects/*}/secrets?secretId=S` |
//! | `projects.secrets.get` | `GET /v1/{name=projects/*/secrets/*}` |
//! | `projects.secrets.patch` | `PATCH /v1/{secret.name=projects/*/secrets/*}?updateMask=annotations` |
//! | `projects.secrets.addVersion` | `POST /v1/{parent=projects/*/secrets/*}:addVersion` |
//! | `projects.secrets.versions.list` | `GET /v1/{parent=projects/*/secrets/*}/versions` |
//! | `projects.secrets.versions.get` | `GET /v1/{name=projects/*/secrets/*/versions/*}` |
//! | `projects.secrets.versions.access` | `GET /v1/{name=projects/*/secrets/*/versions/*}:access` |
//! | `projects.secrets.versions.{disable,enable,destroy}` | `POST /v1/{name=…/versions/*}:disable` … |
//!
//! and the same under `projects/*/locations/*` (regional secrets). JSON field
//! names are camelCase, timestamps RFC 3339 with nanoseconds, int64 fields
//! (`dataCrc32c`) JSON strings, enums names (`"ENABLED"`) unless the request
//! asks `$alt=json;enum-encoding=int` (then `1`), errors
//! `{"error":{"code":404,"message":"…","status":"NOT_FOUND"}}` with the
//! canonical status names. `versions/latest` is an alias of the most recently
//! created version. Versions are listed newest first, `pageSize` 0 meaning
//! "the server decides" (25000 at most), with `nextPageToken` and `totalSize`.
//!
//! A secret carries `annotations` (set by `create`, replaced by `patch` with
//! `updateMask=annotations`, the one field this server updates) and an
//! `etag` that changes with every update of the secret (adding a version is
//! not one). A `patch`, `disable`, `enable` or `destroy` whose non-empty
//! `etag` is not the current one fails with 400 `FAILED_PRECONDITION`, "The
//! etag provided in the request does not match the resource's current etag",
//! as the service answers.
//!
//! The state lives outside the server task: [`SecretManagerServer::stop`] and
//! [`SecretManagerServer::restart`] take the server off its port and put it back
//! with every secret kept. Test hooks deny permissions
//! ([`SecretManagerServer::deny`]), corrupt a stored checksum
//! ([`SecretManagerServer::corrupt_checksum`]), lower the page size cap and
//! make every call fail with `UNAVAILABLE`.
//!
//! Resource names keep the project as the request gave it (the real service
//! answers with the project number).
//!
//! ```no_run
//! # async fn test() {
//! use keyroll_testkit::gcp::SecretManagerServer;
//!
//! let server = SecretManagerServer::start().await;
//! server.create_secret("projects/demo/secrets/app-key");
//! let version = server.add_version("projects/demo/secrets/app-key", b"0123456789abcdef0123456789abcdef");
//! assert_eq!(version, "projects/demo/secrets/app-key/versions/1");
//! println!("point the client at {}", server.endpoint());
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod http;

use http::serve;

/// The most versions one `versions.list` page holds, per the reference.
pub const MAX_PAGE_SIZE: usize = 25_000;

/// The state of a secret version (`SecretVersion.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionState {
    /// `ENABLED` (1): may be accessed.
    Enabled,
    /// `DISABLED` (2): may not be accessed, but can be re-enabled.
    Disabled,
    /// `DESTROYED` (3): the payload is gone for good.
    Destroyed,
}

impl VersionState {
    fn name(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::Destroyed => "DESTROYED",
        }
    }

    fn number(self) -> i64 {
        match self {
            Self::Enabled => 1,
            Self::Disabled => 2,
            Self::Destroyed => 3,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "ENABLED" | "1" => Some(Self::Enabled),
            "DISABLED" | "2" => Some(Self::Disabled),
            "DESTROYED" | "3" => Some(Self::Destroyed),
            _ => None,
        }
    }
}

/// A Secret Manager server on a loopback port, with its state kept across
/// [`stop`](Self::stop) and [`restart`](Self::restart). Stopped on drop.
pub struct SecretManagerServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for SecretManagerServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretManagerServer")
            .field("endpoint", &self.endpoint())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl SecretManagerServer {
    /// Starts an empty server on a free loopback port.
    pub async fn start() -> Self {
        let listener = crate::ports::tokio_listener();
        let addr = listener.local_addr().expect("listener address");
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(serve(listener, state.clone()));
        Self {
            addr,
            state,
            task: Mutex::new(Some(task)),
        }
    }

    /// The endpoint to give a client: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the server listens on (also while stopped: the one
    /// it comes back on).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the server is serving.
    pub fn is_running(&self) -> bool {
        lock(&self.task).as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Takes the server off its port and drops every open connection; the
    /// secrets are kept for [`restart`](Self::restart).
    pub async fn stop(&self) {
        let task = lock(&self.task).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves the kept state again on the same port.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the Secret Manager server's port again");
        *lock(&self.task) = Some(tokio::spawn(serve(listener, self.state.clone())));
    }

    /// Creates secret `name` (`projects/P/secrets/S` or
    /// `projects/P/locations/L/secrets/S`) directly in the state. Panics if
    /// the name is malformed or taken.
    pub fn create_secret(&self, name: &str) {
        let mut state = lock(&self.state);
        let parsed = SecretName::parse(name).unwrap_or_else(|| panic!("`{name}` is not a secret name"));
        assert!(!state.secrets.contains_key(name), "secret {name} exists already");
        state.insert_secret(parsed, None, BTreeMap::new());
    }

    /// The annotations of secret `secret`.
    pub fn annotations(&self, secret: &str) -> BTreeMap<String, String> {
        lock(&self.state)
            .secrets
            .get(secret)
            .unwrap_or_else(|| panic!("no secret {secret}"))
            .annotations
            .clone()
    }

    /// Sets annotation `key` of secret `secret` to `value`, as a `patch` of
    /// its annotations would (its etag changes).
    pub fn set_annotation(&self, secret: &str, key: &str, value: &str) {
        let mut state = lock(&self.state);
        let secret = state
            .secrets
            .get_mut(secret)
            .unwrap_or_else(|| panic!("no secret {secret}"));
        secret.annotations.insert(key.to_owned(), value.to_owned());
        secret.revision += 1;
    }

    /// Adds a version holding `data` to secret `secret`, as `addVersion`
    /// would, and returns the version's name.
    pub fn add_version(&self, secret: &str, data: &[u8]) -> String {
        let mut state = lock(&self.state);
        let secret = state
            .secrets
            .get_mut(secret)
            .unwrap_or_else(|| panic!("no secret {secret}"));
        let number = secret.add(data.to_vec(), false).number;
        format!("{}/versions/{number}", secret.name)
    }

    /// Sets the state of version `version` (a full version name), as
    /// `disable`, `enable` or `destroy` would.
    pub fn set_state(&self, version: &str, to: VersionState) {
        let mut state = lock(&self.state);
        let (secret, number) = version.rsplit_once("/versions/").expect("a version name");
        let version = state
            .secrets
            .get_mut(secret)
            .and_then(|s| s.versions.iter_mut().find(|v| v.number.to_string() == number))
            .unwrap_or_else(|| panic!("no version {version}"));
        version.set_state(to);
    }

    /// Stores a wrong `dataCrc32c` for version `version`, so `access` answers
    /// with a checksum that does not match the payload.
    pub fn corrupt_checksum(&self, version: &str) {
        let mut state = lock(&self.state);
        let (secret, number) = version.rsplit_once("/versions/").expect("a version name");
        let version = state
            .secrets
            .get_mut(secret)
            .and_then(|s| s.versions.iter_mut().find(|v| v.number.to_string() == number))
            .unwrap_or_else(|| panic!("no version {version}"));
        version.crc32c ^= 0x5a5a_5a5a;
    }

    /// Denies permission `permission` (such as `secretmanager.versions.access`,
    /// or `*` for all) on resource `resource` and everything under it: such
    /// calls fail with 403 `PERMISSION_DENIED`.
    pub fn deny(&self, permission: &str, resource: &str) {
        lock(&self.state)
            .denied
            .push((permission.to_owned(), resource.to_owned()));
    }

    /// Removes every [`deny`](Self::deny) rule.
    pub fn allow_all(&self) {
        lock(&self.state).denied.clear();
    }

    /// Caps the number of versions per `versions.list` page (the reference's
    /// cap is [`MAX_PAGE_SIZE`]); a request's `pageSize` 0 or above the cap
    /// gets the cap.
    pub fn set_max_page_size(&self, size: usize) {
        assert!(size > 0, "a page holds at least one version");
        lock(&self.state).max_page_size = size;
    }

    /// While `on`, every call fails with 503 `UNAVAILABLE`.
    pub fn set_unavailable(&self, on: bool) {
        lock(&self.state).unavailable = on;
    }

    /// Every request served so far, as `METHOD /path` (without the query),
    /// oldest first.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).log.clone()
    }
}

impl Drop for SecretManagerServer {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A canonical error: `google.rpc.Code` name and HTTP status.
#[derive(Debug, Clone, Copy)]
enum Code {
    InvalidArgument,
    FailedPrecondition,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Unavailable,
}

impl Code {
    fn status(self) -> (u16, &'static str) {
        match self {
            Self::InvalidArgument => (400, "INVALID_ARGUMENT"),
            Self::FailedPrecondition => (400, "FAILED_PRECONDITION"),
            Self::NotFound => (404, "NOT_FOUND"),
            Self::AlreadyExists => (409, "ALREADY_EXISTS"),
            Self::PermissionDenied => (403, "PERMISSION_DENIED"),
            Self::Unavailable => (503, "UNAVAILABLE"),
        }
    }
}

struct Failure(Code, String);

type Outcome = Result<Value, Failure>;

fn fail(code: Code, message: impl Into<String>) -> Failure {
    Failure(code, message.into())
}

/// The service's answer to a request whose `etag` is not the current one.
fn stale_etag() -> Failure {
    fail(
        Code::FailedPrecondition,
        "The etag provided in the request does not match the resource's current etag. Please retry \
         the whole read-modify-write with exponential backoff.",
    )
}

/// Refuses a request that names an `etag` (non-empty) other than `current`.
fn check_etag(body: &Value, current: &str) -> Result<(), Failure> {
    match body.get("etag").and_then(Value::as_str) {
        Some(given) if !given.is_empty() && given != current => Err(stale_etag()),
        _ => Ok(()),
    }
}

#[derive(Debug)]
struct State {
    secrets: HashMap<String, Secret>,
    denied: Vec<(String, String)>,
    max_page_size: usize,
    unavailable: bool,
    log: Vec<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            secrets: HashMap::new(),
            denied: Vec::new(),
            max_page_size: MAX_PAGE_SIZE,
            unavailable: false,
            log: Vec::new(),
        }
    }
}

impl State {
    fn insert_secret(
        &mut self,
        name: SecretName,
        replication: Option<Value>,
        annotations: BTreeMap<String, String>,
    ) -> &Secret {
        let full = name.to_string();
        let replication = match (&name.location, replication) {
            (_, Some(given)) => Some(given),
            (None, None) => Some(json!({ "automatic": {} })),
            (Some(_), None) => None,
        };
        self.secrets.insert(
            full.clone(),
            Secret {
                name: full.clone(),
                create_time: OffsetDateTime::now_utc(),
                replication,
                annotations,
                revision: 0,
                versions: Vec::new(),
                next_number: 1,
            },
        );
        &self.secrets[&full]
    }

    fn check(&self, permission: &str, resource: &str) -> Result<(), Failure> {
        let denied = self.denied.iter().any(|(p, r)| {
            (p == "*" || p == permission)
                && (resource == r
                    || resource
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/')))
        });
        if denied {
            Err(fail(
                Code::PermissionDenied,
                format!("Permission '{permission}' denied for resource '{resource}' (or it may not exist)."),
            ))
        } else {
            Ok(())
        }
    }

    fn secret(&mut self, name: &str) -> Result<&mut Secret, Failure> {
        self.secrets
            .get_mut(name)
            .ok_or_else(|| fail(Code::NotFound, format!("Secret [{name}] not found.")))
    }
}

#[derive(Debug)]
struct Secret {
    name: String,
    create_time: OffsetDateTime,
    replication: Option<Value>,
    annotations: BTreeMap<String, String>,
    /// Counts the updates of the secret's own fields: part of its etag.
    revision: u64,
    versions: Vec<Version>,
    next_number: u64,
}

impl Secret {
    fn add(&mut self, data: Vec<u8>, client_specified_checksum: bool) -> &Version {
        let number = self.next_number;
        self.next_number += 1;
        self.versions.push(Version {
            number,
            create_time: OffsetDateTime::now_utc(),
            destroy_time: None,
            state: VersionState::Enabled,
            crc32c: crc32c::crc32c(&data),
            data,
            client_specified_checksum,
            revision: 0,
        });
        self.versions.last().expect("just pushed")
    }

    fn json(&self) -> Value {
        let mut secret = Map::new();
        secret.insert("name".into(), self.name.clone().into());
        if let Some(replication) = &self.replication {
            secret.insert("replication".into(), replication.clone());
        }
        secret.insert("createTime".into(), timestamp(self.create_time).into());
        if !self.annotations.is_empty() {
            secret.insert("annotations".into(), json!(self.annotations));
        }
        secret.insert("etag".into(), self.etag().into());
        Value::Object(secret)
    }

    fn etag(&self) -> String {
        format!(
            "\"{:x}-{}\"",
            self.create_time.unix_timestamp_nanos(),
            self.revision
        )
    }

    /// The version `id` names: a number, or `latest` for the most recently
    /// created one.
    fn version(&mut self, id: &str) -> Result<&mut Version, Failure> {
        let name = format!("{}/versions/{id}", self.name);
        let found = if id == "latest" {
            self.versions.iter_mut().max_by_key(|v| v.number)
        } else {
            let number: u64 = id.parse().map_err(|_| {
                fail(
                    Code::InvalidArgument,
                    format!(
                        "Invalid resource field value in the request: [{name}] is not a secret version name."
                    ),
                )
            })?;
            self.versions.iter_mut().find(|v| v.number == number)
        };
        found.ok_or_else(|| fail(Code::NotFound, format!("Secret Version [{name}] not found.")))
    }
}

#[derive(Debug)]
struct Version {
    number: u64,
    create_time: OffsetDateTime,
    destroy_time: Option<OffsetDateTime>,
    state: VersionState,
    data: Vec<u8>,
    crc32c: u32,
    client_specified_checksum: bool,
    revision: u64,
}

impl Version {
    fn set_state(&mut self, to: VersionState) {
        self.state = to;
        self.revision += 1;
        if to == VersionState::Destroyed {
            self.destroy_time = Some(OffsetDateTime::now_utc());
            self.data.clear();
        }
    }

    fn etag(&self) -> String {
        format!(
            "\"{:x}-{}\"",
            self.create_time.unix_timestamp_nanos(),
            self.revision
        )
    }

    fn json(&self, secret: &str, ints: bool) -> Value {
        let mut version = Map::new();
        version.insert("name".into(), format!("{secret}/versions/{}", self.number).into());
        version.insert("createTime".into(), timestamp(self.create_time).into());
        if let Some(destroyed) = self.destroy_time {
            version.insert("destroyTime".into(), timestamp(destroyed).into());
        }
        version.insert(
            "state".into(),
            if ints {
                self.state.number().into()
            } else {
                self.state.name().into()
            },
        );
        version.insert("etag".into(), self.etag().into());
        if self.client_specified_checksum {
            version.insert("clientSpecifiedPayloadChecksum".into(), true.into());
        }
        Value::Object(version)
    }
}

/// `projects/P/secrets/S` or `projects/P/locations/L/secrets/S`.
#[derive(Debug, Clone)]
struct SecretName {
    project: String,
    location: Option<String>,
    secret: String,
}

impl SecretName {
    fn parse(name: &str) -> Option<Self> {
        let parts: Vec<&str> = name.split('/').collect();
        match parts.as_slice() {
            ["projects", p, "secrets", s] => Some(Self::new(p, None, s)),
            ["projects", p, "locations", l, "secrets", s] => Some(Self::new(p, Some(l), s)),
            _ => None,
        }
        .filter(|n| valid_id(&n.project) && valid_id(&n.secret))
    }

    fn new(project: &str, location: Option<&str>, secret: &str) -> Self {
        Self {
            project: project.to_owned(),
            location: location.map(str::to_owned),
            secret: secret.to_owned(),
        }
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}", self.project)?;
        if let Some(location) = &self.location {
            write!(f, "/locations/{location}")?;
        }
        write!(f, "/secrets/{}", self.secret)
    }
}

/// Secret ids: `[a-zA-Z0-9_-]{1,255}` (the reference's `secretId`).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("RFC 3339 formats every UTC time")
}

#[cfg(test)]
mod tests;
