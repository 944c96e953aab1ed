//! Application Default Credentials that cannot be loaded are a configuration
//! error that says how to fix it, reported without touching the network.

use std::time::{Duration, Instant};

use keyroll_core::{KeyProvider, ProviderErrorKind};
use keyroll_gcp::GcpProvider;
use keyroll_testkit::conformance::set_env_var;

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_application_default_credentials_are_a_config_error_naming_the_fix() {
    // This test binary holds only this test: the variable is set for it alone.
    set_env_var(
        "GOOGLE_APPLICATION_CREDENTIALS",
        "/nonexistent/keyroll-test/adc.json",
    );
    let provider = GcpProvider::builder()
        .secret("projects/p/secrets/s")
        .build()
        .unwrap();
    let started = Instant::now();
    let error = provider.fetch().await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Config, "{error}");
    assert!(
        error.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
