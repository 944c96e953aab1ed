use super::*;

#[test]
fn userinfo_is_redacted_wherever_a_url_holds_it() {
    let cases = [
        (
            "vault://user:pass@host:8200/secret/app",
            "vault://***@host:8200/secret/app",
        ),
        ("vault://token@host/secret/app", "vault://***@host/secret/app"),
        (
            "aws-sm://app?endpoint=http://u:pw@h&regoin=x",
            "aws-sm://app?endpoint=http://***@h&regoin=x",
        ),
        ("http://a@b@c/x", "http://***@c/x"),
        ("https://host/path@not-userinfo", "https://host/path@not-userinfo"),
        ("no url here: a@b", "no url here: a@b"),
        ("x://", "x://"),
    ];
    for (text, shown) in cases {
        assert_eq!(redact_userinfo(text), shown, "{text}");
    }
}

#[test]
fn endpoints_with_credentials_or_plaintext_to_the_network_are_refused() {
    let check = |url: &str, allow| Endpoint::check("Test", "the token", url, allow);
    for url in [
        "http://127.0.0.1:8200",
        "http://127.9.9.9",
        "http://localhost:4566/",
        "http://app.localhost",
        "http://[::1]:8085",
        "https://vault.example.com:8200",
        "https://[2001:db8::1]:8200",
    ] {
        assert!(check(url, false).is_ok(), "{url}");
    }
    for url in [
        "http://vault:8200",
        "http://10.0.0.1",
        "http://[2001:db8::1]:80",
        "http://localhost.evil.com",
    ] {
        let err = check(url, false).unwrap_err();
        assert_eq!(err.kind(), crate::ProviderErrorKind::Config);
        assert!(err.to_string().contains("insecure_http=true"), "{err}");
        assert!(check(url, true).unwrap().is_plaintext());
    }
    for url in [
        "http://u:s3cr3t@127.0.0.1:8200",
        "https://s3cr3t@host",
        "https://a:s3cr3t@h/p?q=1",
    ] {
        let err = check(url, true).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err}");
        assert!(err.to_string().contains("credentials"), "{err}");
    }
    for url in [
        "ftp://host",
        "host:8200",
        "http://",
        "https://:8200",
        "file:///x@y",
    ] {
        assert!(check(url, true).is_err(), "{url}");
    }
}

#[test]
fn json_problems_name_fields_and_types_never_values() {
    let secret = JsonSecret::parse(r#"{"key":"s3cr3t-value","n":42,"other":"s3cr3t-neighbour"}"#).unwrap();
    assert_eq!(secret.field("key").unwrap().expose_secret(), b"s3cr3t-value");
    for problem in [
        secret.field("missing").unwrap_err(),
        secret.field("n").unwrap_err(),
        JsonSecret::parse(r#"["s3cr3t-value"]"#)
            .unwrap()
            .field("key")
            .unwrap_err(),
        JsonSecret::parse("s3cr3t-value").err().unwrap(),
        JsonSecret::parse(r#"{"key":"s3cr3t-value\"}"#).err().unwrap(),
    ] {
        let shown = format!("{problem} {problem:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
    assert_eq!(format!("{:?}", secret), "JsonSecret(..)");
}

#[test]
fn fetched_versions_are_kept_until_retained_away() {
    let cache: FetchedVersions<u64> = FetchedVersions::new();
    cache.insert(1, KeyMaterial::from("one"));
    cache.insert(2, KeyMaterial::from("two"));
    assert_eq!(cache.get(&1).unwrap().expose_secret(), b"one");
    cache.retain(|n| *n == 2);
    assert!(cache.get(&1).is_none());
    assert_eq!(cache.len(), 1);
    cache.remove(&2);
    assert!(cache.is_empty());
}
