//! A fault-injecting HTTP proxy: put it between a provider and a real store
//! (OpenBao, moto, the Secret Manager server) and switch, at run time, between
//! passing requests through and failing them the ways stores fail.
//!
//! The proxy works at the HTTP level: every request is forwarded on a fresh
//! connection to the upstream server, unchanged (same method, path, headers and
//! `Host`, so signed requests such as AWS SigV4 stay valid), and the fault in
//! force *when the request arrives* decides what the client gets. Connections a
//! client keeps alive therefore see a fault as soon as it is switched on, as
//! they would with a real failing store behind a load balancer.
//!
//! [`ride_out`] runs one fault against a running refresher and checks what
//! keyroll promises for every store failure.
//!
//! ```no_run
//! # async fn test() {
//! use keyroll_testkit::faults::{Fault, FaultProxy};
//!
//! let proxy = FaultProxy::start("127.0.0.1:8200").await;
//! // Point the provider at proxy.address() instead of the store.
//! proxy.set(Fault::Status(503));
//! // ... the provider now gets 503s ...
//! proxy.set(Fault::PassThrough);
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keyroll_core::{Health, KeyProvider, Policy, Refresher, RefresherBuilder, Signer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does with the requests that arrive while it is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Forward to the upstream server and return its answer unchanged.
    PassThrough,
    /// Answer at once with this HTTP status (such as 500 or 503) and a small
    /// JSON error body; the upstream server is not asked.
    Status(u16),
    /// Accept the request and never answer it (a hung server or a black-holed
    /// load balancer): the client's own timeout is the only way out.
    Hang,
    /// Close the connection without an answer (a crashed backend behind a
    /// proxy, a reset connection).
    Close,
    /// Forward to the upstream server, then hand back its status and headers
    /// with the body cut in half: what a truncated or garbled payload looks
    /// like to a JSON parser.
    CorruptBody,
    /// Forward to the upstream server; when the request's path or one of its
    /// header values contains this marker (such as `GetSecretValue`, AWS's
    /// `X-Amz-Target`), hand back the whole body with stray bytes after it:
    /// never valid JSON, yet every byte the store sent (the secret too) is
    /// there for a client that would echo it. Other requests pass through.
    GarbleBody(&'static str),
}

/// A fault-injecting HTTP/1.1 proxy on a free loopback port, forwarding to a
/// real server. Stopped (with every open connection) on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    fault: Mutex<Fault>,
    upstream: String,
    requests: AtomicU64,
    forwarded: AtomicU64,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port that forwards to `upstream`, a
    /// `host:port` or an `http://host:port` address (plain HTTP only). It
    /// starts in [`Fault::PassThrough`].
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        assert!(
            !upstream.contains('/'),
            "the proxy forwards to host:port, not to `{upstream}`"
        );
        let listener = crate::ports::tokio_listener();
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            fault: Mutex::new(Fault::PassThrough),
            upstream: upstream.clone(),
            requests: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let task = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Self {
            addr,
            upstream,
            shared,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`: the address to give the provider.
    pub fn address(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The fault in force from now on. Requests already hung stay hung.
    pub fn set(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        *lock(&self.shared.fault)
    }

    /// How many requests reached the proxy so far, whatever was done with them.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// How many requests were forwarded to the upstream server so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("address", &self.address())
            .field("upstream", &self.upstream)
            .field("fault", &self.fault())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a connection was closed without an answer.
#[derive(Debug)]
struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection closed by the fault proxy")
    }
}

impl std::error::Error for Closed {}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    // Connections live in this set: aborting the accept task drops it and with
    // it every open (and every hung) connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { handle(&shared, request).await }
                    });
                    // A `Close` fault ends the connection with an error: that is the point.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Closed> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let fault = *lock(&shared.fault);
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = format!(
                "{{\"errors\":[\"fault injected: {}\"]}}",
                status.canonical_reason().unwrap_or("error")
            );
            Ok(Response::builder()
                .status(status)
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .expect("a valid response"))
        }
        Fault::Hang => std::future::pending().await,
        Fault::Close => Err(Closed),
        Fault::PassThrough | Fault::CorruptBody | Fault::GarbleBody(_) => {
            let garble = match fault {
                Fault::GarbleBody(marker) => {
                    request.uri().path().contains(marker)
                        || request
                            .headers()
                            .values()
                            .any(|v| v.to_str().is_ok_and(|v| v.contains(marker)))
                }
                _ => false,
            };
            let (status, headers, body) = match forward(shared, request).await {
                Ok(answer) => answer,
                Err(error) => {
                    // The upstream is down: answer as a gateway would.
                    return Ok(Response::builder()
                        .status(StatusCode::BAD_GATEWAY)
                        .header(CONTENT_TYPE, "text/plain")
                        .body(Full::new(Bytes::from(format!(
                            "fault proxy: upstream failed: {error}"
                        ))))
                        .expect("a valid response"));
                }
            };
            let body = if fault == Fault::CorruptBody {
                corrupt(&body)
            } else if garble {
                let mut garbled = body.to_vec();
                garbled.extend_from_slice(b"\x00}{");
                Bytes::from(garbled)
            } else {
                body
            };
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            // The body may have changed length; hyper sets it from the body.
            response.headers_mut().remove(CONTENT_LENGTH);
            response.headers_mut().remove(TRANSFER_ENCODING);
            Ok(response)
        }
    }
}

type Answer = (StatusCode, hyper::HeaderMap, Bytes);

async fn forward(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let stream = TcpStream::connect(&shared.upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let mut upstream = Request::from_parts(parts, Full::new(body));
    // Origin form towards the server; the Host header stays as the client sent it.
    let path = upstream
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()?;
    *upstream.uri_mut() = path;
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let response = sender.send_request(upstream).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    driver.abort();
    Ok((parts.status, parts.headers, body))
}

/// The first half of `body` with a stray byte after it: never valid JSON,
/// base64 or protobuf, whatever the server sent.
fn corrupt(body: &[u8]) -> Bytes {
    let mut cut = body[..body.len() / 2].to_vec();
    cut.extend_from_slice(b"\x00}{");
    Bytes::from(cut)
}

/// What [`ride_out`] saw: how stale the keys were when the store was
/// repaired and how long the refresher took to recover after that.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RideOut {
    /// The error the refresher reported while degraded.
    pub last_error: String,
    /// How long the fault took to show as degraded.
    pub noticed_after: Duration,
    /// The staleness the status reported just before the repair.
    pub staleness_at_repair: Duration,
    /// Failed refreshes counted before the repair.
    pub failures_at_repair: u32,
    /// From the end of the repair to the first healthy status.
    pub recovery: Duration,
}

/// Poll interval of the refreshers the fault tests drive.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Their backoff cap.
pub const BACKOFF_CAP: Duration = Duration::from_millis(200);

/// A refresher of `provider` with the fault tests' timings: no activation
/// delay (a published key signs at once), [`INTERVAL`] with a little jitter,
/// backoff capped at [`BACKOFF_CAP`], and `fetch_timeout` for one fetch.
pub fn refresher_builder(provider: impl KeyProvider, fetch_timeout: Duration) -> RefresherBuilder {
    Refresher::builder(provider)
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(INTERVAL)
        .jitter(Duration::from_millis(10))
        .backoff(Duration::from_millis(50), BACKOFF_CAP)
        .fetch_timeout(fetch_timeout)
}

/// How soon a refresher must recover once the store is repaired: one poll
/// interval plus the backoff cap, plus `in_flight` for a fetch still running
/// when the repair happens.
pub fn recovery_bound(in_flight: Duration) -> Duration {
    INTERVAL + BACKOFF_CAP + in_flight
}

/// Longest wait for a refresher to notice a fault or to recover, whatever the
/// bound under test: a wait that long is a failure anyway.
pub const GIVE_UP: Duration = Duration::from_secs(20);

/// Runs one fault against a running refresher and checks the promise keyroll
/// makes for every store failure:
///
/// 1. before the fault, a token is signed;
/// 2. `inject` breaks the store; within [`GIVE_UP`] the status turns
///    [`Health::Degraded`] with `last_error` containing `reason`
///    (case-insensitive) and a staleness that keeps growing;
/// 3. meanwhile the last good key set keeps serving: the keyring's generation
///    does not move, the token from before verifies, new tokens are signed by
///    the same key and verify;
/// 4. `repair` fixes the store; the status is [`Health::Healthy`] again within
///    `bound` (the test's poll interval + backoff cap + one fetch timeout, as
///    a fetch in flight at the repair may still fail) and the token from
///    before still verifies.
///
/// Prints the measured figures (`--nocapture` shows them) and returns them.
///
/// # Panics
/// When any of the above does not hold; the message says which and carries the status.
pub async fn ride_out(
    name: &str,
    refresher: &Refresher,
    inject: impl AsyncFnOnce(),
    reason: &str,
    repair: impl AsyncFnOnce(),
    bound: Duration,
) -> RideOut {
    let signer = Signer::new(refresher.keyring().clone()).with_salt("keyroll-fault-injection");
    let before = signer.sign("signed before the fault").unwrap();
    let signing = refresher.keyring().load().signing_key().id().to_owned();
    let generation = refresher.keyring().generation();
    assert_eq!(
        refresher.status().health,
        Health::Healthy,
        "{name}: healthy before the fault"
    );

    let injected = Instant::now();
    inject().await;
    wait_for(name, "the refresher reports degraded", || {
        refresher.status().health == Health::Degraded
    })
    .await;
    let noticed_after = injected.elapsed();
    let status = refresher.status();
    let last_error = status.last_error.clone().unwrap_or_default();
    assert!(
        last_error.to_lowercase().contains(&reason.to_lowercase()),
        "{name}: the status gives the reason (`{reason}`): {status:?}"
    );
    let first_staleness = status.staleness();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = refresher.status();
    assert_eq!(
        status.health,
        Health::Degraded,
        "{name}: still degraded: {status:?}"
    );
    assert!(
        status.staleness() >= first_staleness + Duration::from_millis(300),
        "{name}: staleness grows ({first_staleness:?} then {:?})",
        status.staleness()
    );
    assert!(status.consecutive_failures >= 1, "{name}: {status:?}");

    // The last good key set keeps serving.
    assert_eq!(
        refresher.keyring().generation(),
        generation,
        "{name}: no swap during the fault"
    );
    let old = signer
        .verify(&before)
        .unwrap_or_else(|e| panic!("{name}: a token signed before the fault must verify during it: {e}"));
    assert_eq!(old.value, "signed before the fault");
    let during = signer
        .verify(&signer.sign("signed during the fault").unwrap())
        .unwrap_or_else(|e| panic!("{name}: signing keeps working during the fault: {e}"));
    assert_eq!(during.key.id.as_ref(), signing, "{name}: the same key signs");

    let status = refresher.status();
    let staleness_at_repair = status.staleness();
    let failures_at_repair = status.consecutive_failures;
    repair().await;
    let repaired = Instant::now();
    wait_for(name, "the refresher is healthy again", || {
        refresher.status().health == Health::Healthy
    })
    .await;
    let recovery = repaired.elapsed();
    let status = refresher.status();
    assert_eq!(status.last_error, None, "{name}: {status:?}");
    assert_eq!(status.consecutive_failures, 0, "{name}: {status:?}");
    assert!(
        recovery <= bound,
        "{name}: recovered after {recovery:?}, more than one poll interval + backoff cap + fetch timeout ({bound:?})"
    );
    assert!(
        signer.verify(&before).is_ok(),
        "{name}: a token signed before the fault verifies after the recovery"
    );
    eprintln!(
        "fault {name}: noticed after {noticed_after:?}, reason `{last_error}`, \
         {failures_at_repair} failed refreshes and {staleness_at_repair:?} stale at repair, \
         recovered {recovery:?} after the repair (bound {bound:?})"
    );
    RideOut {
        last_error,
        noticed_after,
        staleness_at_repair,
        failures_at_repair,
        recovery,
    }
}

/// [`ride_out`] of `fault`, switched on at `proxy` (which stands between the
/// refresher's provider and its store) and repaired by switching the proxy
/// back to [`Fault::PassThrough`].
///
/// # Panics
/// As [`ride_out`].
pub async fn ride_out_behind(
    name: &str,
    refresher: &Refresher,
    proxy: &FaultProxy,
    fault: Fault,
    reason: &str,
    bound: Duration,
) -> RideOut {
    ride_out(
        name,
        refresher,
        async || proxy.set(fault),
        reason,
        async || proxy.set(Fault::PassThrough),
        bound,
    )
    .await
}

async fn wait_for(name: &str, what: &str, done: impl FnMut() -> bool) {
    crate::wait_until_within(GIVE_UP, &format!("{what} ({name})"), done).await;
}

#[cfg(test)]
mod tests;
