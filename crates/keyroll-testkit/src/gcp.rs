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

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

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
        state.insert_secret(parsed, None);
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

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    // Connections live in this set: aborting the server task drops it and
    // with it every open connection, as a stopped server would.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A canonical error: `google.rpc.Code` name and HTTP status.
#[derive(Debug, Clone, Copy)]
enum Code {
    InvalidArgument,
    FailedPrecondition,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Aborted,
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
            Self::Aborted => (409, "ABORTED"),
            Self::Unavailable => (503, "UNAVAILABLE"),
        }
    }
}

struct Failure(Code, String);

type Outcome = Result<Value, Failure>;

fn fail(code: Code, message: impl Into<String>) -> Failure {
    Failure(code, message.into())
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
    fn insert_secret(&mut self, name: SecretName, replication: Option<Value>) -> &Secret {
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
        secret.insert(
            "etag".into(),
            format!("\"{:x}\"", self.create_time.unix_timestamp_nanos()).into(),
        );
        Value::Object(secret)
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

/// What the path names, after `/v1/` and before any `:verb`.
enum Target {
    /// `projects/P` or `projects/P/locations/L`: the parent of secrets.
    Secrets(String, Option<String>),
    Secret(String),
    Versions(String),
    Version(String, String),
}

fn target(resource: &str) -> Option<Target> {
    let parts: Vec<&str> = resource.split('/').collect();
    let secret_len = match parts.as_slice() {
        ["projects", p, "secrets"] => return Some(Target::Secrets(p.to_string(), None)),
        ["projects", p, "locations", l, "secrets"] => {
            return Some(Target::Secrets(p.to_string(), Some(l.to_string())));
        }
        ["projects", _, "secrets", _, ..] => 4,
        ["projects", _, "locations", _, "secrets", _, ..] => 6,
        _ => return None,
    };
    let secret = parts[..secret_len].join("/");
    SecretName::parse(&secret)?;
    match &parts[secret_len..] {
        [] => Some(Target::Secret(secret)),
        ["versions"] => Some(Target::Versions(secret)),
        ["versions", id] if !id.is_empty() => Some(Target::Version(secret, id.to_string())),
        _ => None,
    }
}

async fn handle(state: &Mutex<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let ints = query
        .get("$alt")
        .is_some_and(|alt| alt.split(';').any(|part| part == "enum-encoding=int"));
    let outcome = {
        let mut state = lock(state);
        state.log.push(format!("{method} {path}"));
        if state.unavailable {
            Err(fail(Code::Unavailable, "The service is currently unavailable."))
        } else {
            route(&mut state, &method, &path, &query, &body, ints)
        }
    };
    let (status, value) = match outcome {
        Ok(value) => (200, value),
        Err(Failure(code, message)) => {
            let (http, name) = code.status();
            (
                http,
                json!({ "error": { "code": http, "message": message, "status": name } }),
            )
        }
    };
    Response::builder()
        .status(StatusCode::from_u16(status).expect("a valid status"))
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("a valid response")
}

fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    body: &[u8],
    ints: bool,
) -> Outcome {
    let not_found = || {
        fail(
            Code::NotFound,
            format!("The requested URL {path} was not found on this server."),
        )
    };
    let rest = path.strip_prefix("/v1/").ok_or_else(not_found)?;
    let (resource, verb) = match rest.rsplit_once(':') {
        Some((resource, verb)) if !verb.contains('/') => (resource, Some(verb)),
        _ => (rest, None),
    };
    let target = target(resource).ok_or_else(not_found)?;
    let json_body = || -> Result<Value, Failure> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(body).map_err(|e| {
            fail(
                Code::InvalidArgument,
                format!("Invalid JSON payload received. {e}"),
            )
        })
    };
    match (method.as_str(), target, verb) {
        ("POST", Target::Secrets(project, location), None) => {
            create_secret(state, project, location, query, json_body()?)
        }
        ("GET", Target::Secret(name), None) => {
            state.check("secretmanager.secrets.get", &name)?;
            Ok(state.secret(&name)?.json())
        }
        ("POST", Target::Secret(name), Some("addVersion")) => add_version(state, &name, json_body()?, ints),
        ("GET", Target::Versions(parent), None) => list_versions(state, &parent, query, ints),
        ("GET", Target::Version(secret, id), None) => {
            state.check("secretmanager.versions.get", &format!("{secret}/versions/{id}"))?;
            Ok(state.secret(&secret)?.version(&id)?.json(&secret, ints))
        }
        ("GET", Target::Version(secret, id), Some("access")) => access(state, &secret, &id),
        ("POST", Target::Version(secret, id), Some(verb @ ("disable" | "enable" | "destroy"))) => {
            change_state(state, &secret, &id, verb, json_body()?, ints)
        }
        _ => Err(not_found()),
    }
}

fn create_secret(
    state: &mut State,
    project: String,
    location: Option<String>,
    query: &HashMap<String, String>,
    body: Value,
) -> Outcome {
    let parent = match &location {
        None => format!("projects/{project}"),
        Some(location) => format!("projects/{project}/locations/{location}"),
    };
    state.check("secretmanager.secrets.create", &parent)?;
    let id = query.get("secretId").map(String::as_str).unwrap_or_default();
    if !valid_id(id) {
        return Err(fail(
            Code::InvalidArgument,
            format!("Invalid secret_id: [{id}]. Secret ids must match [a-zA-Z0-9_-]{{1,255}}."),
        ));
    }
    let name = SecretName::new(&project, location.as_deref(), id);
    if state.secrets.contains_key(&name.to_string()) {
        return Err(fail(
            Code::AlreadyExists,
            format!("Secret [{name}] already exists."),
        ));
    }
    let replication = body.get("replication").cloned();
    if location.is_some() && replication.is_some() {
        return Err(fail(
            Code::InvalidArgument,
            "Regional secrets must not set replication.",
        ));
    }
    Ok(state.insert_secret(name, replication).json())
}

fn add_version(state: &mut State, parent: &str, body: Value, ints: bool) -> Outcome {
    state.check("secretmanager.versions.add", parent)?;
    let payload = body
        .get("payload")
        .ok_or_else(|| fail(Code::InvalidArgument, "payload is required."))?;
    let data = match payload.get("data") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => STANDARD
            .decode(text)
            .map_err(|_| fail(Code::InvalidArgument, "payload.data is not valid base64."))?,
        Some(_) => {
            return Err(fail(
                Code::InvalidArgument,
                "payload.data must be a base64 string.",
            ));
        }
    };
    let given = match payload.get("dataCrc32c") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            text.parse::<i64>()
                .map_err(|_| fail(Code::InvalidArgument, "payload.dataCrc32c is not an int64."))?,
        ),
        Some(Value::Number(number)) => Some(
            number
                .as_i64()
                .ok_or_else(|| fail(Code::InvalidArgument, "payload.dataCrc32c is not an int64."))?,
        ),
        Some(_) => return Err(fail(Code::InvalidArgument, "payload.dataCrc32c is not an int64.")),
    };
    if let Some(given) = given
        && given != i64::from(crc32c::crc32c(&data))
    {
        return Err(fail(
            Code::InvalidArgument,
            "Checksum mismatch: payload.dataCrc32c does not match the CRC32C of payload.data.",
        ));
    }
    let secret = state.secret(parent)?;
    let name = secret.name.clone();
    Ok(secret.add(data, given.is_some()).json(&name, ints))
}

fn list_versions(state: &mut State, parent: &str, query: &HashMap<String, String>, ints: bool) -> Outcome {
    state.check("secretmanager.versions.list", parent)?;
    let max = state.max_page_size;
    let size = match query.get("pageSize").map(|s| s.parse::<i64>()) {
        None => max,
        Some(Ok(n)) if n < 0 => return Err(fail(Code::InvalidArgument, "page_size must not be negative.")),
        Some(Ok(0)) => max,
        Some(Ok(n)) => usize::try_from(n).unwrap_or(usize::MAX).min(max),
        Some(Err(_)) => return Err(fail(Code::InvalidArgument, "page_size is not an int32.")),
    };
    let offset = match query.get("pageToken").map(String::as_str) {
        None | Some("") => 0,
        Some(token) => {
            decode_token(token, parent).ok_or_else(|| fail(Code::InvalidArgument, "Invalid page token."))?
        }
    };
    let wanted = match query.get("filter").map(String::as_str).map(str::trim) {
        None | Some("") => None,
        Some(filter) => Some(parse_filter(filter)?),
    };
    let secret = state.secret(parent)?;
    let mut versions: Vec<&Version> = secret
        .versions
        .iter()
        .filter(|v| wanted.is_none_or(|s| v.state == s))
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.number));
    let total = versions.len();
    let page: Vec<Value> = versions
        .iter()
        .skip(offset)
        .take(size)
        .map(|v| v.json(&secret.name, ints))
        .collect();
    let mut response = Map::new();
    if !page.is_empty() {
        response.insert("versions".into(), Value::Array(page));
    }
    if offset + size < total {
        response.insert("nextPageToken".into(), encode_token(offset + size, parent).into());
    }
    if total > 0 {
        response.insert("totalSize".into(), total.into());
    }
    Ok(Value::Object(response))
}

/// Page tokens are opaque to clients; this one is bound to its secret.
fn encode_token(offset: usize, parent: &str) -> String {
    STANDARD.encode(format!("{offset}@{parent}"))
}

fn decode_token(token: &str, parent: &str) -> Option<usize> {
    let text = String::from_utf8(STANDARD.decode(token).ok()?).ok()?;
    let (offset, bound) = text.split_once('@')?;
    (bound == parent).then(|| offset.parse().ok()).flatten()
}

/// The list filter's `state:X` (or `state=X`) term, the one this server knows.
fn parse_filter(filter: &str) -> Result<VersionState, Failure> {
    filter
        .split_once([':', '='])
        .filter(|(field, _)| field.trim() == "state")
        .and_then(|(_, value)| VersionState::parse(value.trim()))
        .ok_or_else(|| {
            fail(
                Code::InvalidArgument,
                format!(
                    "Invalid filter [{filter}]: this server filters on state:ENABLED|DISABLED|DESTROYED only."
                ),
            )
        })
}

fn access(state: &mut State, secret: &str, id: &str) -> Outcome {
    state.check(
        "secretmanager.versions.access",
        &format!("{secret}/versions/{id}"),
    )?;
    let version = state.secret(secret)?.version(id)?;
    let name = format!("{secret}/versions/{}", version.number);
    if version.state != VersionState::Enabled {
        return Err(fail(
            Code::FailedPrecondition,
            format!("Secret Version [{name}] is in {} state.", version.state.name()),
        ));
    }
    Ok(json!({
        "name": name,
        "payload": {
            "data": STANDARD.encode(&version.data),
            "dataCrc32c": version.crc32c.to_string(),
        }
    }))
}

fn change_state(state: &mut State, secret: &str, id: &str, verb: &str, body: Value, ints: bool) -> Outcome {
    let name = format!("{secret}/versions/{id}");
    state.check(&format!("secretmanager.versions.{verb}"), &name)?;
    let version = state.secret(secret)?.version(id)?;
    if let Some(etag) = body.get("etag").and_then(Value::as_str)
        && !etag.is_empty()
        && etag != version.etag()
    {
        return Err(fail(
            Code::Aborted,
            format!("The etag provided for Secret Version [{name}] does not match the current etag."),
        ));
    }
    let to = match verb {
        "disable" => VersionState::Disabled,
        "enable" => VersionState::Enabled,
        _ => VersionState::Destroyed,
    };
    if version.state == VersionState::Destroyed {
        return Err(fail(
            Code::FailedPrecondition,
            format!("Secret Version [{name}] is in DESTROYED state."),
        ));
    }
    version.set_state(to);
    Ok(version.json(secret, ints))
}

#[cfg(test)]
mod tests;
