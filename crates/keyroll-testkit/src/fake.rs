//! A tiny scripted HTTP server, for store answers no real server can be made
//! to give (a TTL of 2^64 seconds, a version number of `u64::MAX`): each
//! request's method and path (with query) go to a closure that returns the
//! status and JSON body. Where a real server exists, tests use it instead.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

type Script = dyn Fn(&str, &str) -> (u16, String) + Send + Sync;

/// A scripted HTTP/1.1 server on a free loopback port, stopped on drop.
pub struct FakeServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Starts a server answering each request with `script(method, path)`,
    /// `path` with its query (such as `/v1/secret/data/app?version=2`).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(script: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake server");
        let addr = listener.local_addr().expect("listener address");
        let script: Arc<Script> = Arc::new(script);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let script = Arc::clone(&script);
                        connections.spawn(async move {
                            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                                let script = Arc::clone(&script);
                                async move { Ok::<_, Infallible>(answer(&*script, &request)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Self { addr, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn answer<B>(script: &Script, request: &Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let (status, body) = script(request.method().as_str(), path);
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("address", &self.address())
            .finish()
    }
}
