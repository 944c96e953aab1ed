//! The endpoint rules every remote provider (Vault, AWS, GCP) follows, as
//! checks each provider's tests run on its own URIs: user info is refused
//! and never shown; plain `http://` is refused off this machine unless
//! `insecure_http=true`, and warned about once whenever used.

use keyroll_core::{KeyProvider, KeySource, ProviderError, ProviderErrorKind};

/// Builds a provider from a URI, as the provider's `from_source` does.
pub type Open<P> = fn(&KeySource) -> Result<P, ProviderError>;

fn open_uri<P>(open: Open<P>, uri: &str) -> Result<P, ProviderError> {
    KeySource::parse(uri).and_then(|source| open(&source))
}

/// Each of `uris` (holding `password` in user info) is a configuration
/// error whose `Display` and `Debug` never show `password`.
///
/// # Panics
/// When one opens, fails otherwise, or shows the password.
pub fn assert_user_info_refused<P: KeyProvider>(open: Open<P>, uris: &[&str], password: &str) {
    for uri in uris {
        let Err(error) = open_uri(open, uri) else {
            panic!("{uri} opened")
        };
        assert_eq!(error.kind(), ProviderErrorKind::Config, "{uri}: {error}");
        assert!(!format!("{error} {error:?}").contains(password), "{uri}: {error}");
    }
}

/// `refused` (plain `http://` to another host) is a configuration error
/// naming `insecure_http=true`; each of `allowed` (loopback, or with
/// `insecure_http=true`) opens with exactly one warning naming `risk`, and its
/// `source()` opens back into the same source; `https` opens without one.
///
/// # Panics
/// When any of these does not hold.
pub fn assert_plaintext_rules<P: KeyProvider>(
    open: Open<P>,
    refused: &str,
    allowed: &[&str],
    https: &str,
    risk: &str,
) {
    let (result, _) = crate::logs::on_this_thread(|| open_uri(open, refused));
    let Err(error) = result else {
        panic!("{refused} opened")
    };
    assert_eq!(error.kind(), ProviderErrorKind::Config, "{refused}: {error}");
    assert!(error.to_string().contains("insecure_http=true"), "{error}");
    for uri in allowed {
        let (provider, logs) = crate::logs::on_this_thread(|| open_uri(open, uri));
        let provider = provider.unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(logs.matches("in clear").count(), 1, "{uri}: warned once: {logs}");
        assert!(logs.contains("WARN") && logs.contains(risk), "{uri}: {logs}");
        let again =
            open_uri(open, &provider.source()).unwrap_or_else(|e| panic!("{}: {e}", provider.source()));
        assert_eq!(again.source(), provider.source());
    }
    let (provider, logs) = crate::logs::on_this_thread(|| open_uri(open, https));
    provider.unwrap_or_else(|e| panic!("{https}: {e}"));
    assert!(!logs.contains("in clear"), "{https}: {logs}");
}
