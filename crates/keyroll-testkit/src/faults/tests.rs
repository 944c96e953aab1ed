use std::convert::Infallible;

use super::*;

/// An upstream that answers every request with `{"ok":true}` and counts them.
async fn upstream() -> (SocketAddr, JoinHandle<()>) {
    let listener = crate::ports::tokio_listener();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let host = request.headers()["host"].to_str().unwrap().to_owned();
                    let body = format!(
                        "{{\"ok\":true,\"path\":\"{}\",\"host\":\"{host}\"}}",
                        request.uri()
                    );
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

fn client() -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test]
async fn passes_requests_through_unchanged_with_the_clients_host_header() {
    let (addr, _server) = upstream().await;
    let proxy = FaultProxy::start(&format!("http://{addr}")).await;
    let answer = client()
        .get(format!("{}/v1/secret/data/app?version=2", proxy.address()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let json: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(json["path"], "/v1/secret/data/app?version=2");
    assert_eq!(json["host"], format!("127.0.0.1:{}", proxy.port()));
    assert_eq!((proxy.requests(), proxy.forwarded()), (1, 1));
}

#[tokio::test]
async fn answers_an_injected_status_without_asking_the_server() {
    let (addr, _server) = upstream().await;
    let proxy = FaultProxy::start(&addr.to_string()).await;
    proxy.set(Fault::Status(503));
    let answer = client().get(proxy.address()).send().await.unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(proxy.forwarded(), 0);
    proxy.set(Fault::PassThrough);
    assert_eq!(client().get(proxy.address()).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_hang_is_only_ended_by_the_clients_timeout() {
    let (addr, _server) = upstream().await;
    let proxy = FaultProxy::start(&addr.to_string()).await;
    proxy.set(Fault::Hang);
    let error = client().get(proxy.address()).send().await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
}

#[tokio::test]
async fn a_close_ends_the_connection_without_an_answer() {
    let (addr, _server) = upstream().await;
    let proxy = FaultProxy::start(&addr.to_string()).await;
    proxy.set(Fault::Close);
    let error = client().get(proxy.address()).send().await.unwrap_err();
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
}

#[tokio::test]
async fn a_corrupted_body_keeps_the_status_but_is_no_longer_json() {
    let (addr, _server) = upstream().await;
    let proxy = FaultProxy::start(&addr.to_string()).await;
    proxy.set(Fault::CorruptBody);
    let answer = client().get(proxy.address()).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    assert!(text.starts_with("{\"ok\":true"), "{text}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );
}

#[tokio::test]
async fn a_dead_upstream_is_a_bad_gateway_and_a_dropped_proxy_refuses_connections() {
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], crate::ports::free_ports(1)));
    let proxy = FaultProxy::start(&dead.to_string()).await;
    let answer = client().get(proxy.address()).send().await.unwrap();
    assert_eq!(answer.status(), 502);
    let address = proxy.address();
    drop(proxy);
    // Dropping aborts the proxy's task; its listener closes when the
    // runtime has run the abort, so wait for that instead of guessing.
    let socket = address
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    crate::wait_until_within(
        std::time::Duration::from_secs(5),
        "the dropped proxy refuses connections",
        || std::net::TcpStream::connect(&socket).is_err(),
    )
    .await;
    let error = client().get(address).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}
