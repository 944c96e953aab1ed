//! Key usage and refresh state for Prometheus, through the `metrics` facade.
//!
//! ```sh
//! cargo run --example metrics --features metrics -- file:///run/secrets/keys 127.0.0.1:9185
//! curl http://127.0.0.1:9185/metrics
//! ```
//!
//! Each scrape first reads the keys' per-thread verification counters
//! (`KeyringMetrics::update`) and the refresher's state, then renders: the
//! verify hot path never calls into `metrics`. To show the counters moving,
//! this example verifies a token of the current key every second.

use std::time::Duration;

use keyroll::metrics::KeyringMetrics;
use keyroll::{Refresher, Signer, Status};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let uri = args.next().ok_or("usage: metrics KEY_SOURCE_URI [ADDRESS]")?;
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9185".to_owned());
    let refresher = Refresher::builder(keyroll::open(&uri)?).start().await?;
    let keyring = refresher.keyring().clone();
    let handle = PrometheusBuilder::new().install_recorder()?;
    let listener = TcpListener::bind(&address).await?;
    println!("metrics on http://{}/metrics", listener.local_addr()?);
    let signer = Signer::new(keyring.clone()).with_salt("sessions");
    tokio::spawn(async move {
        loop {
            let _ = signer.verify(&signer.sign("user=42").unwrap());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    serve(listener, handle, KeyringMetrics::new(keyring), move || {
        refresher.status()
    })
    .await?;
    Ok(())
}

/// Answers every request on `listener` with the metrics in Prometheus' text
/// format, updated from the keyring and `status` first.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    metrics: KeyringMetrics,
    status: impl Fn() -> Status,
) -> std::io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        // A scrape is one small GET; its first read holds the request line.
        let mut request = [0u8; 2048];
        let _ = stream.read(&mut request).await?;
        metrics.update();
        metrics.update_status(&status());
        let body = handle.render();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
    }
}
