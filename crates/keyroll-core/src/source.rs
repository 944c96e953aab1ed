//! Key source URIs: one syntax for the library and the CLI.
//!
//! `scheme://authority/path?query`. Each provider crate builds itself from a
//! parsed [`KeySource`] of its own scheme ([`FromSource`](crate::FromSource));
//! the facade crate `keyroll` keeps the one table of schemes (`keyroll::SCHEMES`)
//! and opens a provider by its scheme (`keyroll::open`).

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::ProviderError;
use crate::remote::redact_userinfo;

/// What [`KeySource::format`] escapes in the authority: what ends it (`/`,
/// `?`), what [`KeySource::parse`] decodes (`%`), a fragment (`#`), plus
/// controls (and, as always with `percent_encoding`, non-ASCII).
const AUTHORITY: &AsciiSet = &CONTROLS.add(b'/').add(b'?').add(b'%').add(b'#');

/// What [`KeySource::format`] escapes in the path: the authority's set less
/// `/`, which the path keeps as its separator.
const PATH: &AsciiSet = &CONTROLS.add(b'?').add(b'%').add(b'#');

/// What [`KeySource::format`] escapes in query names and values: the pair
/// and name/value separators, `+` (a space in values), `%`, `#` and a space.
const QUERY: &AsciiSet = &CONTROLS
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b'%')
    .add(b'#')
    .add(b' ');

/// A parsed key source URI: `scheme://authority/path?query`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySource {
    original: String,
    scheme: String,
    authority: String,
    path: String,
    query: Vec<(String, String)>,
}

/// One entry of [`KeySource::apply_params`]: a parameter's name and the
/// builder setter its value goes to.
pub type ParamSetter<'a, B> = (&'a str, fn(B, &str) -> B);

impl KeySource {
    /// Parses `uri`. Percent-escapes in the authority, path and query are
    /// decoded, and `+` in a query value is a space; [`format`](Self::format)
    /// writes the URI back.
    pub fn parse(uri: &str) -> Result<Self, ProviderError> {
        // Text that is not a URI is never echoed: it may be a key (or a
        // password) given where the URI belongs. Its length tells which.
        let not_a_uri = |why: &str| {
            ProviderError::config(format!(
                "the key source is not a URI ({why}; {} characters, not shown in case it is a key): expected SCHEME://..., such as env://SECRET_KEY or file:///etc/keyroll/keys",
                uri.chars().count()
            ))
        };
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| not_a_uri("no `://`"))?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.')
        {
            return Err(not_a_uri(
                "what comes before `://` is not a scheme: lowercase letters, digits, `+`, `-` and `.`",
            ));
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
                .map_err(|_| {
                    ProviderError::config(format!(
                        "`{}` has a percent-escape that is not UTF-8",
                        redact_userinfo(uri)
                    ))
                })
        };
        let mut query = Vec::new();
        for pair in query_text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            query.push((decode(name)?, decode(&value.replace('+', " "))?));
        }
        let mut source = Self {
            original: String::new(),
            scheme: scheme.to_owned(),
            authority: decode(authority)?,
            path: decode(path)?,
            query,
        };
        source.original = source.shown(uri);
        Ok(source)
    }

    /// `uri` as errors, logs and [`Display`](fmt::Display) show it: as
    /// written, unless it holds user info (`user:pass@`) somewhere, in its
    /// authority or in a URL among its parameters (escaped or not); then
    /// written back from its parts with every user info replaced by `***`.
    fn shown(&self, uri: &str) -> String {
        let authority = match self.authority.rfind('@') {
            Some(at) => Cow::Owned(format!("***{}", &self.authority[at..])),
            None => Cow::Borrowed(self.authority.as_str()),
        };
        let values: Vec<Cow<'_, str>> = self.query.iter().map(|(_, v)| redact_userinfo(v)).collect();
        let clean = matches!(authority, Cow::Borrowed(_))
            && matches!(redact_userinfo(&self.path), Cow::Borrowed(_))
            && values.iter().all(|v| matches!(v, Cow::Borrowed(_)))
            && matches!(redact_userinfo(uri), Cow::Borrowed(_));
        if clean {
            return uri.to_owned();
        }
        let params: Vec<(&str, &str)> = self
            .query
            .iter()
            .zip(&values)
            .map(|((name, _), value)| (name.as_str(), value.as_ref()))
            .collect();
        Self::format(&self.scheme, &authority, &redact_userinfo(&self.path), &params)
    }

    /// Writes the URI [`parse`](Self::parse) reads back into exactly these
    /// parts: the inverse of `parse`, what every provider's `source()` uses.
    ///
    /// Escapes only what `parse` would otherwise split on or decode
    /// differently (`/`, `?`, `%`, `#` in the authority; `?`, `%`, `#` in the
    /// path; `&`, `=`, `+`, `%`, `#` and a space in query names and values),
    /// controls and non-ASCII, so ordinary URIs read as written:
    /// `vault://127.0.0.1:8200/secret/myapp?field=signing&tls=false`.
    /// `scheme` is written as given. A non-empty `path` starts with `/`
    /// (one is put in front otherwise, as `parse` returns it). Parameters are
    /// written in the order given; with none there is no `?`.
    ///
    /// ```
    /// use keyroll_core::KeySource;
    ///
    /// let uri = KeySource::format("vault", "127.0.0.1:8200", "/secret/100%?", &[("field", "a&b=c+d")]);
    /// assert_eq!(uri, "vault://127.0.0.1:8200/secret/100%25%3F?field=a%26b%3Dc%2Bd");
    /// let source = KeySource::parse(&uri)?;
    /// assert_eq!(source.authority(), "127.0.0.1:8200");
    /// assert_eq!(source.path(), "/secret/100%?");
    /// assert_eq!(source.param("field"), Some("a&b=c+d"));
    ///
    /// assert_eq!(KeySource::format("file", "", "/etc/keyroll/keys", &[]), "file:///etc/keyroll/keys");
    /// # Ok::<(), keyroll_core::ProviderError>(())
    /// ```
    pub fn format(scheme: &str, authority: &str, path: &str, params: &[(&str, &str)]) -> String {
        let mut uri = format!("{scheme}://{}", utf8_percent_encode(authority, AUTHORITY));
        if !path.is_empty() && !path.starts_with('/') {
            uri.push('/');
        }
        uri.extend(utf8_percent_encode(path, PATH));
        for (i, (name, value)) in params.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.extend(utf8_percent_encode(name, QUERY));
            uri.push('=');
            uri.extend(utf8_percent_encode(value, QUERY));
        }
        uri
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

    /// Passes the value of each parameter named in `setters` that the URI
    /// has to its setter, in the order of `setters`: the part of every
    /// provider's `from_source` that copies URI parameters onto its builder.
    ///
    /// ```
    /// use keyroll_core::KeySource;
    ///
    /// let source = KeySource::parse("aws-sm://app?field=key")?;
    /// let set: Vec<String> = source.apply_params(
    ///     Vec::new(),
    ///     &[
    ///         ("region", |mut b: Vec<String>, v: &str| { b.push(format!("region={v}")); b }),
    ///         ("field", |mut b: Vec<String>, v: &str| { b.push(format!("field={v}")); b }),
    ///     ],
    /// );
    /// assert_eq!(set, ["field=key"]);
    /// # Ok::<(), keyroll_core::ProviderError>(())
    /// ```
    pub fn apply_params<B>(&self, builder: B, setters: &[ParamSetter<'_, B>]) -> B {
        setters
            .iter()
            .fold(builder, |builder, (name, set)| match self.param(name) {
                Some(value) => set(builder, value),
                None => builder,
            })
    }

    /// The query parameters, decoded, in the order given (repeats included).
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Fails with a [`Config`](crate::ProviderErrorKind::Config) error naming
    /// both schemes when this source is not of `scheme`: a provider never
    /// reads a source meant for another.
    pub fn expect_scheme(&self, scheme: &str) -> Result<(), ProviderError> {
        if self.scheme == scheme {
            Ok(())
        } else {
            Err(ProviderError::config(format!(
                "`{}` is a {}:// source, not a {scheme}:// one",
                self.original, self.scheme
            )))
        }
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

    /// The URI as given, with any user info (`user:pass@`, in the authority
    /// or in a URL among the parameters) replaced by `***`: what `Display`,
    /// `Debug` and errors show.
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

    /// Parses `uri` and checks it holds exactly these parts.
    fn assert_parts(uri: &str, authority: &str, path: &str, params: &[(&str, &str)]) {
        let source = KeySource::parse(uri).unwrap_or_else(|e| panic!("{uri:?}: {e}"));
        assert_eq!(source.authority(), authority, "{uri:?}");
        assert_eq!(source.path(), path, "{uri:?}");
        assert_eq!(source.params().collect::<Vec<_>>(), params, "{uri:?}");
    }

    #[test]
    fn format_writes_ordinary_uris_as_people_write_them() {
        for (parts, uri) in [
            (
                (
                    "vault",
                    "127.0.0.1:8200",
                    "/secret/myapp",
                    &[("field", "signing"), ("tls", "false")][..],
                ),
                "vault://127.0.0.1:8200/secret/myapp?field=signing&tls=false",
            ),
            (("file", "", "/etc/keyroll/keys", &[]), "file:///etc/keyroll/keys"),
            (
                ("file", "", "/etc/keyroll/keys.json", &[("format", "json")]),
                "file:///etc/keyroll/keys.json?format=json",
            ),
            (
                ("gcp-sm", "projects", "/p/secrets/s", &[]),
                "gcp-sm://projects/p/secrets/s",
            ),
            (
                (
                    "gcp-sm",
                    "projects",
                    "/p/secrets/s",
                    &[("endpoint", "http://127.0.0.1:8085")],
                ),
                "gcp-sm://projects/p/secrets/s?endpoint=http://127.0.0.1:8085",
            ),
            (
                (
                    "aws-sm",
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:myapp",
                    "/key-AbCdEf",
                    &[("region", "eu-west-1")],
                ),
                "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:myapp/key-AbCdEf?region=eu-west-1",
            ),
            (
                (
                    "docker",
                    "app_key",
                    "",
                    &[("root", "/run/secrets"), ("fallbacks", "a,b")],
                ),
                "docker://app_key?root=/run/secrets&fallbacks=a,b",
            ),
            (("env", "SECRET_KEY", "", &[]), "env://SECRET_KEY"),
            (
                (
                    "vault",
                    "[::1]:8200",
                    "/kv/a-b_c.d~e",
                    &[("namespace", "team/a:b@c")],
                ),
                "vault://[::1]:8200/kv/a-b_c.d~e?namespace=team/a:b@c",
            ),
        ] {
            let (scheme, authority, path, params) = parts;
            assert_eq!(KeySource::format(scheme, authority, path, params), uri);
            assert_parts(uri, authority, path, params);
        }
    }

    #[test]
    fn format_escapes_what_parse_would_split_on_or_decode() {
        assert_eq!(
            KeySource::format("docker", "a/b?c%d#e f", "/x?y%z#w v", &[("n&=+% #", "v&=+% #")]),
            "docker://a%2Fb%3Fc%25d%23e f/x%3Fy%25z%23w v?n%26%3D%2B%25%20%23=v%26%3D%2B%25%20%23"
        );
        assert_eq!(
            KeySource::format("env", "K\nEY\u{7f}é", "", &[]),
            "env://K%0AEY%7F%C3%A9"
        );
    }

    #[test]
    fn parse_reads_back_every_formatted_value() {
        let awkward = [
            "",
            "%",
            "%25",
            "%2",
            "%zz",
            "?",
            "??",
            "&",
            "=",
            "==",
            "+",
            "++",
            " ",
            "#",
            "/",
            "//",
            ":",
            "@",
            ",",
            "a+b c",
            "a=b&c=d",
            "100%",
            "%C3%A9",
            "é",
            "\u{1F511}",
            "\0",
            "\n\t",
            "\u{7f}",
            "\u{85}",
            "://",
            "x?y#z",
            "+%2B+",
        ];
        for authority in awkward {
            for path in awkward
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| format!("/{p}"))
                .chain([String::new()])
            {
                for value in awkward {
                    let params = [("field", value), (value, "v")];
                    let uri = KeySource::format("vault", authority, &path, &params);
                    assert_parts(&uri, authority, &path, &params);
                }
            }
        }
        // Every character of the first 256 code points, alone in each part.
        for c in (0..=255u8).map(char::from) {
            let text = c.to_string();
            let uri = KeySource::format("x", &text, &format!("/{text}"), &[(&text, &text)]);
            assert_parts(&uri, &text, &format!("/{text}"), &[(&text, &text)]);
        }
    }

    #[test]
    fn format_puts_the_slash_a_path_starts_with() {
        assert_eq!(
            KeySource::format("vault", "h:1", "secret/a", &[]),
            "vault://h:1/secret/a"
        );
        assert_parts("vault://h:1/secret/a", "h:1", "/secret/a", &[]);
    }

    #[test]
    fn format_without_parameters_writes_no_query() {
        assert_eq!(KeySource::format("env", "K", "", &[]), "env://K");
        assert_eq!(KeySource::format("env", "", "", &[]), "env://");
        assert_parts("env://", "", "", &[]);
    }

    #[test]
    fn params_lists_every_parameter_decoded_in_order() {
        let source = KeySource::parse("x://a?b=1&c=2+3&b=%34&d").unwrap();
        assert_eq!(
            source.params().collect::<Vec<_>>(),
            [("b", "1"), ("c", "2 3"), ("b", "4"), ("d", "")]
        );
    }

    /// Issue 24 item 7: a key given where the URI belongs was echoed unless
    /// it held `@` (about two thirds of Django-alphabet keys have none).
    #[test]
    fn text_that_is_not_a_uri_is_never_echoed_only_its_length() {
        for text in [
            "pN9v0nq2H3d4sX1b8kq3LzY7tW5mR6cA0eJfU2iGoVhKxQyPTs",
            "k3y-with-an-@-in-it-0123456789abcdefghijklmnopqrs",
            "Secret-Key://0123456789abcdefghijklmnopqrstuvwxyz",
            "://0123456789abcdefghijklmnopqrstuvwxyz",
            "key with spaces: 0123456789",
        ] {
            let err = KeySource::parse(text).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert_eq!(err.kind(), crate::ProviderErrorKind::Config);
            for fragment in text.split([':', '/', '@', ' ']).filter(|f| f.len() >= 4) {
                assert!(!shown.contains(fragment), "{fragment:?} echoed: {shown}");
            }
            assert!(
                shown.contains(&format!("{} characters", text.chars().count())),
                "{shown}"
            );
            assert!(shown.contains("SCHEME://"), "{shown}");
        }
    }

    #[test]
    fn text_without_scheme_is_a_config_error() {
        let err = KeySource::parse("/etc/keys").unwrap_err();
        assert_eq!(err.kind(), crate::ProviderErrorKind::Config);
        assert!(err.to_string().contains("SCHEME://"), "{err}");
    }
}
