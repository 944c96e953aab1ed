//! Key source URIs: `keyroll_core::KeySource::parse` and every provider's
//! `from_source` (Docker secret names, AWS secret ids and ARNs, GCP
//! `SecretName`, Vault mount/path/parameters). Nothing here talks to a store.

#![no_main]

use keyroll_aws::AwsProvider;
use keyroll_core::{KeyProvider, KeySource};
use keyroll_docker::DockerProvider;
use keyroll_gcp::{GcpProvider, SecretName};
use keyroll_vault::VaultProvider;
use libfuzzer_sys::fuzz_target;

/// Characters URI syntax gives a meaning to. Providers print `source()`
/// without escaping, so the round trip below only holds without them.
fn plain(text: &str) -> bool {
    !text.contains(['%', '?', '&', '=', '+', '#', ' ', '/', ':', ',']) && !text.chars().any(char::is_control)
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

    match source.scheme() {
        "docker" => {
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
                if plain(docker.name())
                    && docker.fallbacks().iter().all(|n| plain(n))
                    && docker
                        .root()
                        .to_str()
                        .is_some_and(|r| !r.contains(['%', '?', '&', '=', '+', '#']))
                {
                    let again = KeySource::parse(&docker.source()).expect("source() is a URI");
                    let again = DockerProvider::from_source(&again).expect("source() re-reads");
                    assert_eq!(again.name(), docker.name());
                    assert_eq!(again.fallbacks(), docker.fallbacks());
                    assert_eq!(again.root(), docker.root());
                }
            }
        }
        "aws-sm" => {
            if let Ok(aws) = AwsProvider::from_source(&source) {
                assert_eq!(
                    aws.secret_id(),
                    format!("{}{}", source.authority(), source.path())
                );
                assert!(!aws.secret_id().is_empty());
                let shown = aws.source();
                assert!(shown.starts_with("aws-sm://"));
                let params_plain = ["region", "field", "endpoint"].iter().all(|p| {
                    source
                        .param(p)
                        .is_none_or(|v| !v.contains(['%', '?', '&', '#', '+', '=']))
                });
                if !aws.secret_id().contains(['%', '?', '&', '#', '+']) && params_plain {
                    let again = AwsProvider::from_source(&KeySource::parse(&shown).expect("a URI"))
                        .expect("source() re-reads");
                    assert_eq!(again.secret_id(), aws.secret_id());
                    assert_eq!(again.source(), shown);
                }
            }
        }
        "gcp-sm" => {
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
                if source
                    .param("endpoint")
                    .is_none_or(|e| !e.contains(['%', '?', '&', '#', '+', '=']))
                {
                    let again = GcpProvider::from_source(&KeySource::parse(&shown).expect("a URI"))
                        .expect("source() re-reads");
                    assert_eq!(again.secret(), secret);
                    assert_eq!(again.endpoint(), gcp.endpoint());
                }
            }
            if let Ok(parsed) = SecretName::parse(&name) {
                assert_eq!(parsed.as_str(), name);
                let segments = name.split('/').count();
                assert_eq!(parsed.location().is_some(), segments == 6);
            }
        }
        // `ca_cert` names a file read when the client is built: reading
        // arbitrary paths (/dev/zero) is an operator's choice, not a parser's bug.
        "vault" if source.param("ca_cert").is_none() => {
            if let Ok(vault) = VaultProvider::from_source(&source) {
                let shown = vault.source();
                assert!(shown.starts_with("vault://"));
                let special = |v: Option<&str>| v.is_some_and(|v| !plain(v));
                if !special(source.param("field"))
                    && !special(source.param("namespace"))
                    && plain(source.path().trim_matches('/').replace('/', "").as_str())
                    && !source.authority().contains(['%', '?', '&', '#', '+', '/'])
                {
                    let again = VaultProvider::from_source(&KeySource::parse(&shown).expect("a URI"))
                        .unwrap_or_else(|e| panic!("{shown:?} does not re-read: {e}"));
                    assert_eq!(again.source(), shown);
                }
            }
        }
        _ => {}
    }
});
