//! The env provider passes the shared conformance suite.

use std::sync::Mutex;

use keyroll_core::{KeyProvider, async_trait};
use keyroll_env::EnvProvider;
use keyroll_testkit::conformance::{self, Capabilities, TestStore};

/// Serialises changes to the process environment made by this test binary.
static ENV: Mutex<()> = Mutex::new(());

/// A pair of environment variables with names unique to one test. A rotation
/// moves the current key to the front of the fallbacks variable, as an
/// operator rotating Django's `SECRET_KEY` does.
#[derive(Debug)]
struct EnvStore {
    key_var: String,
}

impl EnvStore {
    fn new(test: &str) -> Self {
        Self {
            key_var: format!("KEYROLL_CONFORMANCE_{test}_{}", std::process::id()),
        }
    }

    fn fallbacks_var(&self) -> String {
        format!("{}_FALLBACKS", self.key_var)
    }
}

#[async_trait]
impl TestStore for EnvStore {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(EnvProvider::new(&self.key_var))
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        Box::new(EnvProvider::new(format!("{}_NEVER_SET", self.key_var)))
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        let empty = format!("{}_EMPTY", self.key_var);
        let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
        conformance::set_env_var(&empty, "");
        Box::new(EnvProvider::new(empty))
    }

    async fn publish(&self, material: &str) {
        let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let fallbacks = self.fallbacks_var();
        let mut older: Vec<String> = std::env::var(&self.key_var).into_iter().collect();
        older.extend(std::env::var(&fallbacks).ok().filter(|f| !f.is_empty()));
        // Every write to the environment in this test binary happens under the
        // ENV lock, the variables are unique to this test, and the provider
        // reads them with `std::env::var`, which Rust's environment lock
        // serialises against the write.
        conformance::set_env_var(&fallbacks, &older.join(","));
        conformance::set_env_var(&self.key_var, material);
    }
}

#[test]
fn source_reads_back_the_same_variables_whatever_their_names() {
    for (key_var, fallbacks_var) in [
        ("APP_KEY", "APP_KEY_FALLBACKS"),
        ("APP_KEY", "OTHER_FALLBACKS"),
        ("A%20B?c&d=e+f#g/h", "A%20B?c&d=e+f#g/h_FALLBACKS"),
        ("KEY", "x&y=z+ %#"),
        ("ключ", "é\u{7f}"),
    ] {
        let provider = EnvProvider::new(key_var).with_fallbacks_var(fallbacks_var);
        assert_eq!(conformance::source_reads_back::<EnvProvider>(&provider), provider);
    }
}

#[tokio::test]
async fn env_provider_passes_the_conformance_suite() {
    conformance::run::<EnvProvider>(&EnvStore::new("SUITE"), Capabilities::new()).await;
}

#[tokio::test]
async fn env_provider_keeps_the_old_key_as_fallback_after_a_rotation() {
    let store = EnvStore::new("ROTATION");
    conformance::rotation_puts_the_new_key_first_and_keeps_the_old(&store).await;
    conformance::refresher_follows_a_rotation(&store).await;
}
