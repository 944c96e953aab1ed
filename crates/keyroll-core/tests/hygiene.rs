//! Key material never reaches logs, errors, Debug or Display: a refresher is
//! driven through start, rotation, a weak key, a failing store and recovery
//! while every `tracing` event (TRACE level) is captured.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use keyroll_core::{
    KeyProvider, KeyVersion, Keyring, Policy, ProviderError, Reach, Refresher, Signer, async_trait,
};

const A: &str = "hygiene-key-A-Zq8v!m2#Lr0@Xw5^Tn7&Kp1*Hs4(Jd6)";
const B: &str = "hygiene-key-B-Qa9$Vb3%Wc8+Yd2=Ze7-Uf1_Ig6~Oh5";
const WEAK: &str = "weak-Rt5-Qm2";

#[derive(Debug, Clone)]
struct Store(Arc<Mutex<Result<Vec<KeyVersion>, ()>>>);

impl Store {
    fn hold(&self, keys: &[&str]) {
        *self.0.lock().unwrap() = Ok(keys.iter().map(|k| KeyVersion::from_material(*k)).collect());
    }
    fn fail(&self) {
        *self.0.lock().unwrap() = Err(());
    }
}

#[async_trait]
impl KeyProvider for Store {
    async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .map_err(|()| ProviderError::unavailable("connection refused"))
    }
    fn reach(&self) -> Reach {
        Reach::Local
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every form a key could leak in: as text, a long enough piece of it, hex
/// and base64 of its bytes.
fn forms(key: &str) -> Vec<String> {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        key.to_owned(),
        key[..10].to_owned(),
        key[key.len() - 10..].to_owned(),
        hex,
        base64::engine::general_purpose::STANDARD.encode(key),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
    ]
}

async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn no_log_error_or_debug_output_contains_key_material() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = Store(Arc::new(Mutex::new(Err(()))));
    store.hold(&[A]);
    let refresher = Refresher::builder(store.clone())
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let signer = Signer::new(refresher.keyring().clone()).with_salt("s");
    let token = signer.sign("value").unwrap();

    let mut shown = Vec::new();
    store.hold(&[B, A]);
    eventually(|| refresher.keyring().generation() >= 2).await;
    shown.push(format!("{:?}", signer.verify(&token).unwrap()));
    store.hold(&[WEAK, B, A]);
    eventually(|| refresher.status().last_error.is_some()).await;
    shown.push(format!("{:?}", refresher.status()));
    store.fail();
    eventually(|| {
        refresher
            .status()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused"))
    })
    .await;
    store.hold(&[B, A]);
    eventually(|| refresher.status().last_error.is_none()).await;

    let keyring: &Keyring = refresher.keyring();
    shown.push(format!(
        "{keyring:?} {signer:?} {refresher:?} {:?}",
        keyring.load()
    ));
    for entry in keyring.load().keys() {
        shown.push(format!("{entry:?} {:?} {}", entry.material(), entry.id()));
    }
    let weak_error = Policy::default()
        .evaluate(
            &[KeyVersion::from_material(WEAK)],
            &Default::default(),
            std::time::SystemTime::now(),
        )
        .unwrap_err();
    shown.push(format!("{weak_error} {weak_error:?}"));
    let start_error = Refresher::builder(Store(Arc::new(Mutex::new(Ok(vec![KeyVersion::from_material(
        WEAK,
    )])))))
    .startup_timeout(Duration::from_millis(50))
    .start()
    .await
    .unwrap_err();
    shown.push(format!("{start_error} {start_error:?}"));
    refresher.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("key set installed"),
        "the test captured the refresher's logs: {logs}"
    );
    assert!(logs.contains("keeping the last good key set"), "{logs}");
    let everything = format!("{logs}\n{}", shown.join("\n"));
    for key in [A, B, WEAK] {
        for form in forms(key) {
            assert!(
                !everything.contains(&form),
                "key material ({form}) leaked into:\n{everything}"
            );
        }
    }
}
