//! Key source URIs: one syntax for the library and the CLI.
//!
//! `env://SECRET_KEY`, `file:///abs/path`, `docker://name`,
//! `vault://host:port/mount/path?field=key`, `aws-sm://id`, `gcp-sm://projects/p/secrets/s`.
//! Each provider crate builds itself from a parsed [`KeySource`]; the facade
//! crate `keyroll` maps schemes to providers (`keyroll::open`).

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::ProviderError;

/// A parsed key source URI: `scheme://authority/path?query`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySource {
    original: String,
    scheme: String,
    authority: String,
    path: String,
    query: Vec<(String, String)>,
}

impl KeySource {
    /// Parses `uri`. Percent-escapes in the path and query are decoded.
    pub fn parse(uri: &str) -> Result<Self, ProviderError> {
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
            ProviderError::config(format!(
                "`{uri}` is not a key source URI; expected SCHEME://..., such as env://SECRET_KEY or file:///etc/keyroll/keys"
            ))
        })?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.')
        {
            return Err(ProviderError::config(format!(
                "`{scheme}` is not a valid URI scheme"
            )));
        }
        let (location, query_text) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match location.find('/') {
            Some(slash) => location.split_at(slash),
            None => (location, ""),
        };
        let decode = |text: &str| -> Result<String, ProviderError> {
            percent_decode_str(text)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| ProviderError::config(format!("`{uri}` has a percent-escape that is not UTF-8")))
        };
        let mut query = Vec::new();
        for pair in query_text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            query.push((decode(name)?, decode(&value.replace('+', " "))?));
        }
        Ok(Self {
            original: uri.to_owned(),
            scheme: scheme.to_owned(),
            authority: decode(authority)?,
            path: decode(path)?,
            query,
        })
    }

    /// The scheme, such as `file`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// What stands between `://` and the next `/`: a host and port, a
    /// variable name, a secret name. Empty for `file:///path`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The path, starting with `/` when present.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of query parameter `name`, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Fails with a clear message when the URI has a query parameter not in
    /// `known`, so a typo is an error instead of a silent default.
    pub fn expect_params(&self, known: &[&str]) -> Result<(), ProviderError> {
        match self.query.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            None => Ok(()),
            Some((name, _)) => Err(ProviderError::config(format!(
                "unknown parameter `{name}` in `{}`; {}:// accepts {}",
                self.original,
                self.scheme,
                if known.is_empty() {
                    "no parameters".to_owned()
                } else {
                    known.join(", ")
                }
            ))),
        }
    }

    /// The URI as given.
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySource({})", self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scheme_authority_path_and_query() {
        let source = KeySource::parse("vault://127.0.0.1:8200/secret/app%20key?field=key&tls=false").unwrap();
        assert_eq!(source.scheme(), "vault");
        assert_eq!(source.authority(), "127.0.0.1:8200");
        assert_eq!(source.path(), "/secret/app key");
        assert_eq!(source.param("field"), Some("key"));
        assert_eq!(source.param("tls"), Some("false"));
        assert!(source.expect_params(&["field", "tls"]).is_ok());
        let err = source.expect_params(&["field"]).unwrap_err();
        assert!(err.to_string().contains("unknown parameter `tls`"), "{err}");
    }

    #[test]
    fn file_uris_have_an_empty_authority() {
        let source = KeySource::parse("file:///etc/keyroll/keys").unwrap();
        assert_eq!(source.authority(), "");
        assert_eq!(source.path(), "/etc/keyroll/keys");
    }

    #[test]
    fn env_names_keep_their_case() {
        assert_eq!(
            KeySource::parse("env://SECRET_KEY").unwrap().authority(),
            "SECRET_KEY"
        );
    }

    #[test]
    fn text_without_scheme_is_a_config_error() {
        let err = KeySource::parse("/etc/keys").unwrap_err();
        assert_eq!(err.kind(), crate::ProviderErrorKind::Config);
        assert!(err.to_string().contains("SCHEME://"), "{err}");
    }
}
