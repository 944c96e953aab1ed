//! `vault://HOST:PORT/MOUNT/PATH?field=key` to provider settings.

use std::time::Duration;

use keyroll_core::remote::{INSECURE_HTTP, insecure_http_param};
use keyroll_core::{FromSource, KeySource, ProviderError};

use crate::auth::SERVICE_ACCOUNT_TOKEN;
use crate::{Auth, Credential, VaultProvider, VaultProviderBuilder};

const PARAMS: &[&str] = &[
    "field",
    "tls",
    "namespace",
    "ca_cert",
    "token_file",
    "auth",
    "auth_mount",
    "role",
    "jwt_file",
    "role_id_file",
    "secret_id_file",
    "max_versions",
    "metadata_every",
    "timeout",
    INSECURE_HTTP,
];

/// The value of parameter `name`, a positive whole number, if given.
fn positive<T>(source: &KeySource, name: &str) -> Result<Option<T>, ProviderError>
where
    T: std::str::FromStr + PartialEq + Default,
{
    source
        .param(name)
        .map(|value| {
            value.parse().ok().filter(|n| *n != T::default()).ok_or_else(|| {
                ProviderError::config(format!("`{source}`: {name} must be a positive whole number"))
            })
        })
        .transpose()
}

/// The builder a `vault://` URI describes; environment defaults are applied
/// by [`VaultProviderBuilder::build`].
pub(crate) fn builder_from_source(source: &KeySource) -> Result<VaultProviderBuilder, ProviderError> {
    source.expect_scheme(<VaultProvider as FromSource>::SCHEME)?;
    source.expect_params(PARAMS)?;
    let path = source.path().trim_matches('/');
    let (mount, secret) = path.split_once('/').unwrap_or((path, ""));
    if mount.is_empty() || secret.is_empty() {
        return Err(ProviderError::config(format!(
            "`{source}` names no secret: use vault://HOST:PORT/MOUNT/PATH, such as vault://vault:8200/secret/myapp"
        )));
    }
    let mut builder = VaultProvider::builder()
        .secret(mount, secret)
        .allow_insecure_http(insecure_http_param(source)?);
    let tls = match source.param("tls") {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ProviderError::config(format!(
                "`{source}`: tls must be true or false, not `{other}`"
            )));
        }
    };
    if !source.authority().is_empty() {
        let scheme = if tls { "https" } else { "http" };
        builder = builder.address(format!("{scheme}://{}", source.authority()));
    } else if source.param("tls").is_some() {
        return Err(ProviderError::config(format!(
            "`{source}`: tls= only applies with a HOST:PORT; with vault:/// the scheme comes from VAULT_ADDR"
        )));
    }
    builder = source.apply_params(
        builder,
        &[
            ("field", |b, v| b.field(v)),
            ("namespace", |b, v| b.namespace(v)),
            ("ca_cert", |b, v| b.ca_cert(v)),
        ],
    );
    if let Some(max) = positive::<usize>(source, "max_versions")? {
        builder = builder.max_versions(max);
    }
    if let Some(every) = positive::<u32>(source, "metadata_every")? {
        builder = builder.metadata_every(every);
    }
    if let Some(timeout) = source.param("timeout") {
        // try_from: `Duration::from_secs_f64` panics on values too large for a Duration.
        let timeout = timeout
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| {
                ProviderError::config(format!("`{source}`: timeout is in seconds, such as 2.5"))
            })?;
        builder = builder.attempt_timeout(timeout);
    }
    let file_or_env = |file_param: &str, env: &str| match source.param(file_param) {
        Some(path) => Credential::file(path),
        None => Credential::env(env),
    };
    let auth = match source.param("auth").unwrap_or("token") {
        "token" => source
            .param("token_file")
            .map(|path| Auth::token(Credential::file(path))),
        "approle" => Some(Auth::app_role(
            file_or_env("role_id_file", "VAULT_ROLE_ID"),
            file_or_env("secret_id_file", "VAULT_SECRET_ID"),
        )),
        "kubernetes" => {
            let role = source.param("role").ok_or_else(|| {
                ProviderError::config(format!(
                    "`{source}`: auth=kubernetes needs role=ROLE, the Vault role bound to the service account"
                ))
            })?;
            Some(Auth::kubernetes_with_jwt(
                role,
                Credential::file(source.param("jwt_file").unwrap_or(SERVICE_ACCOUNT_TOKEN)),
            ))
        }
        other => {
            return Err(ProviderError::config(format!(
                "`{source}`: unknown auth method `{other}`; use token, approle or kubernetes"
            )));
        }
    };
    let misplaced = match auth {
        Some(Auth::AppRole { .. }) => ["token_file", "role", "jwt_file"].as_slice(),
        Some(Auth::Kubernetes { .. }) => ["token_file", "role_id_file", "secret_id_file"].as_slice(),
        _ => ["role", "jwt_file", "role_id_file", "secret_id_file", "auth_mount"].as_slice(),
    };
    if let Some(param) = misplaced.iter().find(|p| source.param(p).is_some()) {
        return Err(ProviderError::config(format!(
            "`{source}`: `{param}` does not apply to auth={}",
            source.param("auth").unwrap_or("token")
        )));
    }
    if let Some(mut auth) = auth {
        if let Some(mount) = source.param("auth_mount") {
            auth = auth.with_mount(mount);
        }
        builder = builder.auth(auth);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use keyroll_testkit::conformance::uris_are_refused;

    use super::*;

    fn builder(uri: &str) -> Result<VaultProviderBuilder, ProviderError> {
        builder_from_source(&KeySource::parse(uri).unwrap())
    }

    #[test]
    fn host_and_port_speak_https_unless_tls_is_false() {
        let https = builder("vault://vault.internal:8200/secret/myapp").unwrap();
        assert_eq!(
            https.connection.endpoint.as_deref(),
            Some("https://vault.internal:8200")
        );
        let http = builder("vault://127.0.0.1:8200/secret/myapp?tls=false").unwrap();
        assert_eq!(http.connection.endpoint.as_deref(), Some("http://127.0.0.1:8200"));
    }

    #[test]
    fn first_segment_is_the_mount_and_the_rest_the_path() {
        let b = builder("vault://h:1/kv/team/app/signing?field=signing").unwrap();
        assert_eq!(b.mount.as_deref(), Some("kv"));
        assert_eq!(b.path.as_deref(), Some("team/app/signing"));
        assert_eq!(b.field.as_deref(), Some("signing"));
    }

    #[test]
    fn no_host_leaves_the_address_to_vault_addr() {
        let b = builder("vault:///secret/myapp").unwrap();
        assert_eq!(b.connection.endpoint, None);
    }

    #[test]
    fn a_uri_without_a_secret_path_is_a_config_error() {
        for uri in ["vault://h:1/secret", "vault://h:1/", "vault://h:1"] {
            let err = builder(uri).expect_err(uri);
            assert!(err.to_string().contains("MOUNT/PATH"), "{uri}: {err}");
        }
    }

    #[test]
    fn unknown_and_misplaced_parameters_are_refused() {
        let err = builder("vault://h:1/secret/app?feild=key").unwrap_err();
        assert!(err.to_string().contains("unknown parameter `feild`"), "{err}");
        let err = builder("vault://h:1/secret/app?role=x").unwrap_err();
        assert!(
            err.to_string().contains("`role` does not apply to auth=token"),
            "{err}"
        );
        let err = builder("vault://h:1/secret/app?auth=kubernetes").unwrap_err();
        assert!(err.to_string().contains("needs role="), "{err}");
        let err = builder("vault://h:1/secret/app?auth=ldap").unwrap_err();
        assert!(err.to_string().contains("unknown auth method `ldap`"), "{err}");
        let err = builder("vault://h:1/secret/app?tls=no").unwrap_err();
        assert!(err.to_string().contains("tls must be true or false"), "{err}");
    }

    #[test]
    fn auth_methods_take_their_credentials_from_files_or_the_environment() {
        let b = builder("vault://h:1/secret/app?auth=approle&secret_id_file=/run/sid&auth_mount=ar").unwrap();
        match b.auth.unwrap() {
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                assert_eq!(mount, "ar");
                assert!(matches!(role_id, Credential::Env(name) if name == "VAULT_ROLE_ID"));
                assert!(matches!(secret_id, Credential::File(path) if path.to_str() == Some("/run/sid")));
            }
            other => panic!("expected AppRole, got {other:?}"),
        }
        let b = builder("vault://h:1/secret/app?auth=kubernetes&role=web").unwrap();
        match b.auth.unwrap() {
            Auth::Kubernetes { mount, role, jwt } => {
                assert_eq!((mount.as_str(), role.as_str()), ("kubernetes", "web"));
                assert!(
                    matches!(jwt, Credential::File(path) if path.to_str() == Some(SERVICE_ACCOUNT_TOKEN))
                );
            }
            other => panic!("expected Kubernetes, got {other:?}"),
        }
        let b = builder("vault://h:1/secret/app?token_file=/run/agent/token").unwrap();
        assert!(matches!(b.auth, Some(Auth::Token(Credential::File(_)))));
        assert!(builder("vault://h:1/secret/app").unwrap().auth.is_none());
    }

    #[test]
    fn limits_are_validated() {
        let b = builder("vault://h:1/secret/app?max_versions=3&timeout=1.5").unwrap();
        assert_eq!(b.max_versions, Some(3));
        assert_eq!(b.connection.attempt_timeout, Some(Duration::from_millis(1500)));
        assert!(builder("vault://h:1/secret/app?max_versions=0").is_err());
        assert_eq!(
            builder("vault://h:1/secret/app?metadata_every=1")
                .unwrap()
                .metadata_every,
            Some(1)
        );
        for bad in ["0", "-1", "x", "4294967296"] {
            assert!(builder(&format!("vault://h:1/secret/app?metadata_every={bad}")).is_err());
        }
        assert!(builder("vault://h:1/secret/app?timeout=-1").is_err());
    }

    #[test]
    fn a_timeout_too_large_for_a_duration_is_a_config_error_not_a_panic() {
        let error = builder("vault://h:1/secret/app?timeout=1e30").unwrap_err();
        assert_eq!(error.kind(), keyroll_core::ProviderErrorKind::Config);
        assert!(error.message().contains("timeout is in seconds"), "{error}");
    }

    #[test]
    fn a_host_that_is_not_a_url_is_a_config_error_not_a_panic() {
        // Found by the key_source fuzz target: vaultrs' settings builder panicked on it.
        let uris = [
            "vault://127L0.0.1:8200/secret/myapp",
            "vault://h:99999/secret/app",
            "vault://[::1/secret/app",
        ];
        for error in uris_are_refused::<VaultProvider>(&uris, "") {
            assert!(error.message().contains("is not a valid URL"), "{error}");
        }
    }

    #[test]
    fn source_of_an_ordinary_secret_is_the_uri_people_write() {
        let provider = VaultProvider::builder()
            .address("https://vault.example.com:8200")
            .secret("secret", "myapp/signing")
            .namespace("team-a")
            .auth(Auth::token(Credential::value("t")))
            .build()
            .unwrap();
        assert_eq!(
            keyroll_core::KeyProvider::source(&provider),
            "vault://vault.example.com:8200/secret/myapp/signing?field=key&namespace=team-a"
        );
    }
}
