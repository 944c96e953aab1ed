//! The metrics example's endpoint, scraped across a rotation: usage by key,
//! role and format, roles, generation, refreshes and rejections.

#[path = "../examples/metrics.rs"]
#[allow(dead_code)]
mod example;

use std::time::Duration;

use keyroll::metrics::KeyringMetrics;
use keyroll::{Policy, Refresher, Signer};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FIRST: &str = "metrics-test-first-key-7c1f0e9a4b2d8e6f3a5c9b1d7e2f4a6c";
const SECOND: &str = "metrics-test-second-key-e4b9a1c7f3d5e2b8a6c4f1d9e7b3a5c2";

async fn scrape(address: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The value of the series `name` whose labels include every pair of `labels`.
fn value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let series = line.rsplit_once(' ').map_or(*line, |(series, _)| series);
            (series == name || series.starts_with(&format!("{name}{{")))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit_once(' ')?.1.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scrape_across_a_rotation_shows_usage_roles_and_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("{FIRST}\n")).unwrap();
    let refresher = Refresher::builder(keyroll::open(&format!("file://{}", path.display())).unwrap())
        // An hour of staged activation: the rotated key stays pending for the
        // whole test, so the roles cannot change between a read and a scrape
        // (with the default, the new key's activation moment fell between
        // them on a loaded machine).
        .policy(
            Policy::default()
                .with_fallback_window(Duration::from_secs(3600))
                .with_activation_delay(Duration::from_secs(3600)),
        )
        .start()
        .await
        .unwrap();
    let keyring = refresher.keyring().clone();
    let first_id = keyring.load().keys()[0].id().to_owned();
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let metrics = KeyringMetrics::new(keyring.clone());
    let mut changes = keyring.subscribe();
    tokio::spawn(example::serve(listener, handle, metrics, move || {
        refresher.status()
    }));

    let signer = Signer::new(keyring.clone()).with_salt("sessions");
    let old = signer.sign("user=42").unwrap();
    for _ in 0..3 {
        signer.verify(&old).unwrap();
    }
    assert!(
        signer
            .verify("kr1.AAAAAAAAAAA.eA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .is_err()
    );

    let body = scrape(address).await;
    let first_current = [
        ("key_id", first_id.as_str()),
        ("role", "current"),
        ("format", "native"),
    ];
    assert_eq!(
        value(&body, "keyroll_verifications_total", &first_current),
        Some(3.0),
        "{body}"
    );
    let role = |id: &str, role: &str| [("key_id", id.to_owned()), ("role", role.to_owned())];
    let has = |body: &str, name: &str, labels: &[(&str, String)]| {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        value(body, name, &labels)
    };
    assert_eq!(
        has(&body, "keyroll_key_role", &role(&first_id, "current")),
        Some(1.0)
    );
    assert_eq!(value(&body, "keyroll_key_set_generation", &[]), Some(1.0));
    assert_eq!(
        value(&body, "keyroll_refresh_health", &[("health", "healthy")]),
        Some(1.0)
    );
    assert_eq!(
        value(&body, "keyroll_refresh_consecutive_failures", &[]),
        Some(0.0)
    );
    assert!(value(&body, "keyroll_refresh_staleness_seconds", &[]).is_some());
    assert_eq!(
        value(
            &body,
            "keyroll_rejections_total",
            &[("format", "native"), ("reason", "unknown_key")]
        ),
        Some(1.0),
        "{body}"
    );

    // Rotate: the new key first, the old one stays as a fallback.
    let staging = dir.path().join("keys.new");
    std::fs::write(&staging, format!("{SECOND}\n{FIRST}\n")).unwrap();
    std::fs::rename(&staging, &path).unwrap();
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .unwrap()
        .unwrap();
    let second_id = keyring.load().keys()[0].id().to_owned();
    assert_ne!(second_id, first_id);
    // The series follow the roles the key set gives: staged for an hour, the
    // new key verifies and the old one still signs.
    let now = std::time::SystemTime::now();
    let role_of = |id: &str| keyring.load().key(id).unwrap().role_at(now).to_string();
    let (first_role, second_role) = (role_of(&first_id), role_of(&second_id));
    assert_eq!(
        (first_role.as_str(), second_role.as_str()),
        ("current", "pending")
    );
    for _ in 0..2 {
        signer.verify(&old).unwrap();
    }

    let body = scrape(address).await;
    let first_now = [
        ("key_id", first_id.as_str()),
        ("role", first_role.as_str()),
        ("format", "native"),
    ];
    assert_eq!(
        value(&body, "keyroll_verifications_total", &first_now),
        Some(5.0),
        "{body}"
    );
    assert_eq!(
        has(&body, "keyroll_key_role", &role(&first_id, &first_role)),
        Some(1.0)
    );
    assert_eq!(
        has(&body, "keyroll_key_role", &role(&second_id, &second_role)),
        Some(1.0),
        "{body}"
    );
    assert_eq!(value(&body, "keyroll_key_set_generation", &[]), Some(2.0));
    // The refresher counts a refresh when it has finished, just after it
    // installed the new set that woke this test: scrape until it shows (the
    // stress run once scraped in between).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape(address).await;
        if value(&body, "keyroll_refreshes_total", &[("outcome", "success")]).is_some_and(|n| n >= 1.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no successful refresh counted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
