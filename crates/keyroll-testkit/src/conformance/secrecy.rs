//! The checks that key material never shows: in `Debug` output and in
//! `tracing` events.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use keyroll_core::{FirstSeen, KeyMaterial};

use super::{PATIENCE, TestStore, policy, signs_with, start_refresher, strong_key};

/// `Debug` of the provider, the versions, the key set, the keyring and the
/// refresher status never shows the material, in text, hex or base64.
pub async fn debug_output_never_contains_material(store: &dyn TestStore) {
    let (old, new) = (strong_key(), strong_key());
    store.publish(&old).await;
    store.publish(&new).await;
    let provider = store.provider();
    let versions = provider.fetch().await.expect("fetch succeeds");
    let mut first_seen = FirstSeen::new();
    let now = SystemTime::now();
    first_seen.observe(&versions, now);
    let set = policy()
        .evaluate(&versions, &first_seen, now)
        .expect("the store holds a usable key set");
    let refresher = start_refresher(store).await;
    let shown = [
        ("provider", format!("{provider:?}")),
        ("provider source", provider.source()),
        ("versions", format!("{versions:?}")),
        ("key set", format!("{set:?}")),
        ("keyring", format!("{:?}", refresher.keyring())),
        ("status", format!("{:?}", refresher.status())),
        ("refresher", format!("{refresher:?}")),
    ];
    refresher.shutdown().await;
    for key in [&old, &new] {
        for (what, text) in &shown {
            assert_no_material(what, text, key);
        }
    }
}

/// No `tracing` event of a refresher that starts and follows a rotation
/// shows key material: keyroll's own events at every level (TRACE included)
/// and other crates' events from INFO up, from every thread.
pub async fn logs_never_contain_material(store: &dyn TestStore) {
    let logs = captured_logs();
    let start = lock_logs(logs).len();
    let (old, new) = (strong_key(), strong_key());
    store.publish(&old).await;
    let refresher = start_refresher(store).await;
    store.publish(&new).await;
    crate::wait_until_within(PATIENCE, "the new key signs", || signs_with(&refresher, &new)).await;
    refresher.shutdown().await;
    let text = String::from_utf8_lossy(&lock_logs(logs)[start..]).into_owned();
    assert!(
        text.contains("key set installed"),
        "the suite captured the refresher's logs: {text}"
    );
    for key in [&old, &new] {
        assert_no_material("tracing output", &text, key);
    }
}

/// Every `tracing` event of this process from the first call on: a global
/// subscriber, since a refresher's task logs from whatever thread runs it.
fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let writer = move || CapturedWriter(Arc::clone(&sink));
        let keyroll_or_info = tracing_subscriber::filter::filter_fn(|meta| {
            meta.target().starts_with("keyroll") || *meta.level() <= tracing::Level::INFO
        });
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(keyroll_or_info),
        );
        tracing::subscriber::set_global_default(subscriber)
            .expect("the conformance suite installs the process's only global tracing subscriber");
        logs
    })
}

fn lock_logs(logs: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    logs.lock().unwrap_or_else(|e| e.into_inner())
}

struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock_logs(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Panics when `text` shows `key` as text (or a 16-character piece of it), hex
/// or base64.
pub fn assert_no_material(what: &str, text: &str, key: &str) {
    let bytes = key.as_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let forms = [
        key.to_owned(),
        key.chars().take(16).collect(),
        hex.clone(),
        hex.to_uppercase(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    for form in forms {
        assert!(
            !text.contains(&form),
            "{what} shows key material (fingerprint {}): {text}",
            KeyMaterial::from(key).fingerprint()
        );
    }
}
