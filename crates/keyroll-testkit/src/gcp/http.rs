//! The REST surface: the accept loop, request routing by path and verb,
//! and one handler per method, each working on the shared `State`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{
    Code, Failure, Outcome, SecretName, State, Version, VersionState, check_etag, fail, lock, valid_id,
};

pub(super) async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
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
        ("PATCH", Target::Secret(name), None) => update_secret(state, &name, query, json_body()?),
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
    let annotations = annotations(&body)?;
    Ok(state.insert_secret(name, replication, annotations).json())
}

/// `projects.secrets.patch`: replaces the fields `updateMask` names (this
/// server updates `annotations` only), if the body's `etag`, when given, is
/// the secret's current one.
fn update_secret(state: &mut State, name: &str, query: &HashMap<String, String>, body: Value) -> Outcome {
    state.check("secretmanager.secrets.update", name)?;
    let mask = query.get("updateMask").map(String::as_str).unwrap_or_default();
    let fields: Vec<&str> = mask.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    if fields.is_empty() {
        return Err(fail(Code::InvalidArgument, "update_mask is required."));
    }
    if let Some(other) = fields.iter().find(|f| **f != "annotations") {
        return Err(fail(
            Code::InvalidArgument,
            format!("Invalid update_mask path [{other}]: this server updates annotations only."),
        ));
    }
    let annotations = annotations(&body)?;
    let secret = state.secret(name)?;
    check_etag(&body, &secret.etag())?;
    secret.annotations = annotations;
    secret.revision += 1;
    Ok(secret.json())
}

/// A request's `annotations`, checked as the reference says: keys of 1 to 63
/// characters that begin and end with an alphanumeric character and hold
/// only alphanumerics, `-`, `_` and `.`; keys and values under 16 KiB in all.
fn annotations(body: &Value) -> Result<BTreeMap<String, String>, Failure> {
    let invalid = |message: &str| fail(Code::InvalidArgument, format!("Invalid annotations: {message}"));
    let map = match body.get("annotations") {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("not a map of strings.")),
    };
    let mut annotations = BTreeMap::new();
    let mut size = 0usize;
    for (key, value) in map {
        let value = value.as_str().ok_or_else(|| invalid("values must be strings."))?;
        let bytes = key.as_bytes();
        let well_formed = (1..=63).contains(&key.chars().count())
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !well_formed {
            return Err(invalid(&format!("key [{key}] is not a valid annotation key.")));
        }
        size = size.saturating_add(key.len()).saturating_add(value.len());
        annotations.insert(key.clone(), value.to_owned());
    }
    if size >= 16 * 1024 {
        return Err(invalid(
            "the total size of keys and values must be less than 16KiB.",
        ));
    }
    Ok(annotations)
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
    check_etag(&body, &version.etag())?;
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
