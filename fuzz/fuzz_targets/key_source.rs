//! Key source URIs: `keyroll_core::KeySource::parse` and its inverse
//! `KeySource::format`, and every provider's `from_source` (Docker secret
//! names, file paths, AWS secret ids and ARNs, GCP `SecretName`, Vault
//! mount/path/parameters) with the round trip through `source()`: the URI a
//! provider shows reads back to the same provider, whatever characters its
//! settings hold, for every scheme of the facade's table (`keyroll::open`).
//! Nothing here talks to a store.

#![no_main]

use keyroll_aws::AwsProvider;
use keyroll_core::{FromSource, KeyProvider, KeySource};
use keyroll_docker::DockerProvider;
use keyroll_file::FileProvider;
use keyroll_gcp::{GcpProvider, SecretName};
use keyroll_vault::VaultProvider;
use libfuzzer_sys::fuzz_target;

/// Parses `uri`, which a provider's `source()` printed.
fn reparse(uri: &str) -> KeySource {
    KeySource::parse(uri).unwrap_or_else(|e| panic!("source() {uri:?} is not a URI: {e}"))
}

fn check_name(name: &str) {
    assert!(!name.is_empty() && name != "." && name != "..", "{name:?}");
    assert!(!name.contains(['/', '\0']), "{name:?}");
}

fuzz_target!(|uri: &str| {
    let Ok(source) = KeySource::parse(uri) else {
        // SecretName takes bare names, not URIs: give it the text as well.
        if let Ok(name) = SecretName::parse(uri) {
            assert_eq!(name.as_str(), uri);
        }
        return;
    };
    assert_eq!(source.as_str(), uri);
    assert!(!source.scheme().is_empty());
    assert!(uri.starts_with(&format!("{}://", source.scheme())));
    assert!(source.path().is_empty() || source.path().starts_with('/'));
    if !uri.contains(['%', '+']) {
        let location = &uri[source.scheme().len() + 3..];
        let location = location.split_once('?').map_or(location, |(l, _)| l);
        assert_eq!(location, format!("{}{}", source.authority(), source.path()));
    }
    let _ = source.expect_params(&["field"]);
    // `format` is the inverse of `parse`: it writes the parts back so that
    // they parse to the same parts.
    let params: Vec<(&str, &str)> = source.params().collect();
    let formatted = KeySource::format(source.scheme(), source.authority(), source.path(), &params);
    let again = KeySource::parse(&formatted).unwrap_or_else(|e| panic!("{formatted:?}: {e}"));
    assert_eq!(again.scheme(), source.scheme(), "{formatted:?}");
    assert_eq!(again.authority(), source.authority(), "{formatted:?}");
    assert_eq!(again.path(), source.path(), "{formatted:?}");
    assert_eq!(again.params().collect::<Vec<_>>(), params, "{formatted:?}");

    // Every scheme of the facade's table of stores: what a provider shows
    // opens a provider of the same scheme that shows the same. (`ca_cert`
    // names a file the Vault provider reads: see below.)
    if source.param("ca_cert").is_none()
        && let Ok(provider) = keyroll::open(uri)
    {
        let shown = provider.source();
        assert_eq!(reparse(&shown).scheme(), source.scheme(), "{shown:?}");
        let again = keyroll::open(&shown).unwrap_or_else(|e| panic!("{shown:?} does not re-read: {e}"));
        assert_eq!(again.source(), shown);
    }

    match source.scheme() {
        scheme if scheme == DockerProvider::SCHEME => {
            if let Ok(docker) = DockerProvider::from_source(&source) {
                check_name(docker.name());
                docker.fallbacks().iter().for_each(|n| check_name(n));
                assert!(docker.root().is_absolute());
                // A secret name never escapes the secrets directory.
                assert_eq!(docker.path().parent(), Some(docker.root()));
                assert_eq!(
                    docker.path().file_name().and_then(|n| n.to_str()),
                    Some(docker.name())
                );
                let again = DockerProvider::from_source(&reparse(&docker.source()))
                    .unwrap_or_else(|e| panic!("{:?} does not re-read: {e}", docker.source()));
                assert_eq!(again.name(), docker.name());
                assert_eq!(again.fallbacks(), docker.fallbacks());
                assert_eq!(again.root(), docker.root());
                assert_eq!(again.source(), docker.source());
            }
        }
        scheme if scheme == FileProvider::SCHEME => {
            if let Ok(file) = FileProvider::from_source(&source) {
                assert_eq!(file.path().as_os_str(), source.path());
                let shown = file.source();
                let again = FileProvider::from_source(&reparse(&shown))
                    .unwrap_or_else(|e| panic!("{shown:?} does not re-read: {e}"));
                assert_eq!(again.path().as_os_str(), file.path().as_os_str(), "{shown:?}");
                assert_eq!(again.format(), file.format(), "{shown:?}");
                assert_eq!(again.source(), shown);
            }
        }
        scheme if scheme == AwsProvider::SCHEME => {
            if let Ok(aws) = AwsProvider::from_source(&source) {
                assert_eq!(
                    aws.secret_id(),
                    format!("{}{}", source.authority(), source.path())
                );
                assert!(!aws.secret_id().is_empty());
                let shown = aws.source();
                assert!(shown.starts_with("aws-sm://"));
                let again = reparse(&shown);
                for param in ["field", "endpoint"] {
                    assert_eq!(again.param(param), source.param(param), "{shown:?}");
                }
                if let Some(region) = source.param("region") {
                    assert_eq!(again.param("region"), Some(region), "{shown:?}");
                }
                let again = AwsProvider::from_source(&again)
                    .unwrap_or_else(|e| panic!("{shown:?} does not re-read: {e}"));
                assert_eq!(again.secret_id(), aws.secret_id());
                assert_eq!(again.source(), shown);
            }
        }
        scheme if scheme == GcpProvider::SCHEME => {
            let name = format!("{}{}", source.authority(), source.path());
            if let Ok(gcp) = GcpProvider::from_source(&source) {
                let secret = gcp.secret();
                assert_eq!(secret.as_str(), name.trim_start_matches('/'));
                let endpoint = secret.default_endpoint();
                assert!(endpoint.starts_with("https://secretmanager."));
                assert!(
                    !endpoint["https://".len()..].contains(['/', '@', '?', '#']),
                    "{endpoint}"
                );
                assert!(gcp.endpoint().starts_with("http"));
                let shown = gcp.source();
                let again = GcpProvider::from_source(&reparse(&shown))
                    .unwrap_or_else(|e| panic!("{shown:?} does not re-read: {e}"));
                assert_eq!(again.secret(), secret);
                assert_eq!(again.endpoint(), gcp.endpoint());
                assert_eq!(again.source(), shown);
            }
            if let Ok(parsed) = SecretName::parse(&name) {
                assert_eq!(parsed.as_str(), name);
                let segments = name.split('/').count();
                assert_eq!(parsed.location().is_some(), segments == 6);
            }
        }
        // `ca_cert` names a file read when the client is built: reading
        // arbitrary paths (/dev/zero) is an operator's choice, not a parser's bug.
        scheme if scheme == VaultProvider::SCHEME && source.param("ca_cert").is_none() => {
            if let Ok(vault) = VaultProvider::from_source(&source) {
                let shown = vault.source();
                assert!(shown.starts_with("vault://"));
                let again = reparse(&shown);
                assert_eq!(
                    again.param("field"),
                    Some(source.param("field").unwrap_or("key")),
                    "{shown:?}"
                );
                if let Some(namespace) = source.param("namespace") {
                    assert_eq!(again.param("namespace"), Some(namespace), "{shown:?}");
                }
                if !source.authority().is_empty() {
                    // The address loses trailing slashes (`https://host/` is `https://host`).
                    assert_eq!(
                        again.authority(),
                        source.authority().trim_end_matches('/'),
                        "{shown:?}"
                    );
                    assert_eq!(
                        again.param("tls"),
                        source.param("tls").filter(|t| *t == "false"),
                        "{shown:?}"
                    );
                }
                let path = source.path().trim_matches('/');
                let (mount, secret) = path
                    .split_once('/')
                    .expect("from_source needs a mount and a path");
                assert_eq!(
                    again.path(),
                    format!("/{mount}/{}", secret.trim_matches('/')),
                    "{shown:?}"
                );
                let again = VaultProvider::from_source(&again)
                    .unwrap_or_else(|e| panic!("{shown:?} does not re-read: {e}"));
                assert_eq!(again.source(), shown);
            }
        }
        _ => {}
    }
});
