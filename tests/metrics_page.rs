//! `MetricsPage`: the per-key sums of `keyroll_verifications_total` read
//! over HTTP from a page the Prometheus exporter rendered (two replicas'
//! series, as a `/federate` page gathers them), and the failures it reports.

use std::sync::{Arc, Mutex};

use keyroll::metrics::KeyringMetrics;
use keyroll::metrics_page::UsageSource;
use keyroll::{KeyMaterial, KeySet, Keyring, MetricsPage, Signer};
use keyroll_testkit::fake::FakeServer;
use metrics_exporter_prometheus::PrometheusBuilder;

const KEY: &str = "metrics-page-key-0123456789abcdefghijklmnopqrstuvwxyz";

/// A replica's page after it verified `tokens` tokens with key `v1`, its
/// series labelled with its `instance` as federation labels them.
fn replica_page(tokens: usize, instance: &str) -> String {
    let recorder = PrometheusBuilder::new()
        .add_global_label("instance", instance)
        .build_recorder();
    let handle = recorder.handle();
    let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from(KEY)).unwrap());
    let signer = Signer::new(keyring.clone());
    for _ in 0..tokens {
        signer.verify(&signer.sign("x").unwrap()).unwrap();
    }
    metrics::with_local_recorder(&recorder, || KeyringMetrics::new(keyring).update());
    handle.render()
}

#[tokio::test]
async fn the_fleet_s_verifications_per_key_are_summed_from_a_rendered_page() {
    let page = format!("{}{}", replica_page(3, "a:9000"), replica_page(4, "b:9000"));
    assert!(page.contains("keyroll_verifications_total{"), "{page}");
    let served = Arc::new(Mutex::new((200, page)));
    let answer = Arc::clone(&served);
    let server = FakeServer::start(move |_, _| answer.lock().unwrap().clone()).await;
    let metrics = MetricsPage::new(&format!("{}/federate", server.address())).unwrap();

    let counts = metrics.verifications(&["v1".to_owned()]).await.unwrap();
    assert_eq!(counts.get("v1"), Some(&7), "{counts:?}");

    *served.lock().unwrap() = (503, "down".to_owned());
    let error = metrics.verifications(&[]).await.unwrap_err();
    assert!(error.contains("answered 503"), "{error}");
}

/// Automatic rotation's counters and gauge, recorded by a refresher whose
/// task runs on this thread (a current-thread runtime inside a recorder
/// local to the test).
#[test]
fn rotations_retirements_and_the_next_due_moment_are_exported() {
    use std::time::Duration;

    use keyroll::Refresher;
    use keyroll_testkit::memory::MemoryStore;

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let store = MemoryStore::new();
    for age in [40, 30, 20] {
        store.add(&format!("{KEY}-{age}"), Duration::from_secs(age));
    }
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let refresher = Refresher::builder(store.clone())
                .interval(Duration::from_millis(50))
                .activation_delay(Duration::ZERO)
                .max_fallbacks(1)
                .rotate_every(Duration::from_secs(10))
                .start()
                .await
                .unwrap();
            keyroll_testkit::wait_until("a rotation and a retirement", || {
                refresher.status().rotation.unwrap().retired == 2
            })
            .await;
            KeyringMetrics::new(refresher.keyring().clone()).update_status(&refresher.status());
            refresher.shutdown().await;
        });
    });
    let page = handle.render();
    assert!(
        page.contains("keyroll_rotations_total{outcome=\"published\"} 1"),
        "{page}"
    );
    assert!(page.contains("keyroll_retirements_total 2"), "{page}");
    let due = page
        .lines()
        .find_map(|line| line.strip_prefix("keyroll_rotation_due_seconds "))
        .and_then(|value| value.parse::<f64>().ok())
        .expect("the gauge");
    assert!(
        (9.0..=10.0).contains(&due),
        "due a period after the new key: {due}"
    );
}
