//! A tower layer answering readiness probes with the keyring's health.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use keyroll_core::{Health, Refresher};
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

/// The keyring's health as a readiness probe sees it: ids and counters, never
/// key material, source URIs or error messages.
///
/// As a response: `200 OK` when ready, `503 Service Unavailable` otherwise,
/// with this as the JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Readiness {
    /// `healthy`, `degraded` (the last refresh failed; the last good keys
    /// keep serving) or `stale` (no successful refresh for longer than the
    /// configured maximum) or `stopped` (no refresher keeps the keys
    /// current any more).
    pub status: &'static str,
    /// True only when `healthy`.
    pub ready: bool,
    /// The keyring's generation: increases at every key-set change.
    pub generation: u64,
    /// Whole seconds since the store last confirmed the key set.
    pub staleness_seconds: u64,
    /// Failed refreshes since the last success.
    pub consecutive_failures: u32,
    /// The id of the key that signs now.
    pub signing_key: String,
    /// The ids of the keys that verify now: current, pending, fallbacks.
    pub verifying_keys: Vec<String>,
}

impl Readiness {
    /// A snapshot of `refresher`; `max_staleness` turns a key set not
    /// confirmed for longer into `stale` (not ready).
    pub fn of(refresher: &Refresher, max_staleness: Option<Duration>) -> Self {
        let status = refresher.status();
        let staleness = status.staleness();
        let now = SystemTime::now();
        let set = refresher.keyring().load();
        let label = match status.health {
            Health::Healthy if max_staleness.is_some_and(|max| staleness > max) => "stale",
            Health::Healthy => "healthy",
            Health::Stale => "stale",
            Health::Stopped => "stopped",
            _ => "degraded",
        };
        Self {
            status: label,
            ready: label == "healthy",
            generation: status.generation,
            staleness_seconds: staleness.as_secs(),
            consecutive_failures: status.consecutive_failures,
            signing_key: set.signing_key_at(now).id().to_owned(),
            verifying_keys: set
                .verifying_keys_at(now)
                .map(|(key, _)| key.id().to_owned())
                .collect(),
        }
    }
}

impl IntoResponse for Readiness {
    fn into_response(self) -> Response {
        let code = if self.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, Json(self)).into_response()
    }
}

/// Answers requests for one path (default `/ready`) with the [`Readiness`] of
/// a [`Refresher`] and passes every other request through.
///
/// ```
/// use axum::{Router, routing::get};
/// use keyroll_axum::HealthLayer;
///
/// fn app(refresher: keyroll_core::Refresher) -> Router {
///     Router::new()
///         .route("/", get(|| async { "hello" }))
///         .layer(HealthLayer::new(refresher).path("/healthz").max_staleness(std::time::Duration::from_secs(300)))
/// }
/// ```
#[derive(Clone)]
pub struct HealthLayer {
    refresher: Refresher,
    path: Arc<str>,
    max_staleness: Option<Duration>,
}

impl HealthLayer {
    /// Reports `refresher`'s health at `/ready`.
    pub fn new(refresher: Refresher) -> Self {
        Self {
            refresher,
            path: Arc::from("/ready"),
            max_staleness: None,
        }
    }

    /// Answers at `path` instead of `/ready`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = Arc::from(path);
        self
    }

    /// Reports not ready (`stale`) when the store has not confirmed the key
    /// set for longer than `max_staleness`, even if no refresh failed.
    pub fn max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = Some(max_staleness);
        self
    }
}

impl fmt::Debug for HealthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthLayer")
            .field("path", &self.path)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = HealthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`HealthLayer`].
#[derive(Clone, Debug)]
pub struct HealthService<S> {
    inner: S,
    layer: HealthLayer,
}

impl<S, B> Service<Request<B>> for HealthService<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path() == &*self.layer.path {
            let readiness = Readiness::of(&self.layer.refresher, self.layer.max_staleness);
            Box::pin(std::future::ready(Ok(readiness.into_response())))
        } else {
            Box::pin(self.inner.call(request))
        }
    }
}
