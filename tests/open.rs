//! `keyroll::open`: one URI syntax for every provider, and clear errors for
//! schemes that are unknown or not compiled in.

use std::path::Path;
use std::time::Duration;

use keyroll::{KeySource, ProviderErrorKind, Refresher, Signer};

#[test]
fn every_store_in_this_build_opens_from_its_example_and_names_its_source() {
    let enabled: Vec<_> = keyroll::SCHEMES.iter().filter(|s| s.enabled).collect();
    assert!(!enabled.is_empty());
    for scheme in enabled {
        let provider = keyroll::open(scheme.example).unwrap_or_else(|e| panic!("{}: {e}", scheme.example));
        assert!(
            provider.source().starts_with(&format!("{}://", scheme.name)),
            "{} -> {}",
            scheme.example,
            provider.source()
        );
    }
}

#[test]
fn a_file_source_shows_the_uri_it_was_opened_with() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!("file://{}/keys", dir.path().display());
    assert_eq!(keyroll::open(&file).unwrap().source(), file);
    let docker = keyroll::open("docker://app_key?root=/run/secrets").unwrap();
    assert!(
        docker.source().starts_with("docker://app_key"),
        "{}",
        docker.source()
    );
}

#[test]
fn an_unknown_scheme_lists_every_scheme_of_the_table() {
    let err = keyroll::open("s3://bucket/key").unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Config);
    let message = err.to_string();
    assert!(message.contains("unknown key source scheme `s3://`"), "{message}");
    for scheme in keyroll::SCHEMES {
        assert!(message.contains(&format!("{}://", scheme.name)), "{message}");
    }
}

#[test]
fn a_scheme_whose_feature_is_off_names_the_feature() {
    for scheme in keyroll::SCHEMES.iter().filter(|s| !s.enabled) {
        let err = keyroll::open(scheme.example).unwrap_err();
        assert_eq!(err.kind(), ProviderErrorKind::Config);
        assert!(
            err.to_string()
                .contains(&format!("the `{}` feature", scheme.feature)),
            "{err}"
        );
    }
}

#[test]
fn the_table_has_one_line_per_scheme_and_feature_and_a_feature_for_each() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let cli = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/keyroll-cli/Cargo.toml"
    ))
    .unwrap();
    let cli_default = cli
        .lines()
        .find(|line| line.starts_with("default = "))
        .expect("the CLI has default features");
    for (i, scheme) in keyroll::SCHEMES.iter().enumerate() {
        let example = KeySource::parse(scheme.example).unwrap();
        assert_eq!(example.scheme(), scheme.name, "{scheme:?}");
        assert!(
            manifest.contains(&format!(
                "\n{} = [\"dep:{}\"]",
                scheme.feature,
                scheme.provider_crate.replace('_', "-")
            )),
            "Cargo.toml has feature `{}` turning on {}",
            scheme.feature,
            scheme.provider_crate
        );
        assert!(
            cli.contains(&format!("\n{0} = [\"keyroll/{0}\"]", scheme.feature))
                && cli_default.contains(&format!("\"{}\"", scheme.feature)),
            "the CLI has feature `{}`, on by default",
            scheme.feature
        );
        for other in &keyroll::SCHEMES[i + 1..] {
            assert_ne!(scheme.name, other.name);
            assert_ne!(scheme.feature, other.feature);
            assert_ne!(scheme.provider_crate, other.provider_crate);
        }
    }
}

/// Provider crates are the crates in crates/ that implement `FromSource`.
#[test]
fn every_provider_crate_is_in_the_table() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut providers = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        if sources(&dir.join("src"))
            .iter()
            .any(|text| text.contains("impl FromSource for"))
        {
            let name = dir.file_name().unwrap().to_string_lossy().replace('-', "_");
            providers.push(name);
        }
    }
    providers.sort();
    let mut listed: Vec<String> = keyroll::SCHEMES
        .iter()
        .map(|s| s.provider_crate.to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        providers, listed,
        "every provider crate in crates/ has one line in the table of stores (src/lib.rs), and no other"
    );
}

/// The text of every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut texts = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            texts.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            texts.push(std::fs::read_to_string(&path).unwrap());
        }
    }
    texts
}

#[test]
fn the_readme_table_of_sources_names_exactly_the_schemes_of_the_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Key sources")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Key sources section");
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|cell| cell.split_once("://").map(|(scheme, _)| scheme))
        .collect();
    let schemes: Vec<&str> = keyroll::SCHEMES.iter().map(|s| s.name).collect();
    assert_eq!(
        documented, schemes,
        "README's table of key sources, in the table's order"
    );
}

#[test]
fn a_path_without_scheme_is_refused_with_an_example() {
    let err = keyroll::open("/etc/keys").unwrap_err();
    assert!(err.to_string().contains("file:///etc/keyroll/keys"), "{err}");
}

#[tokio::test]
async fn a_service_follows_a_rotation_through_the_facade_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let old = "facade-test-key-one-0123456789abcdefghijklmnop";
    std::fs::write(&path, format!("{old}\n")).unwrap();
    let refresher = Refresher::builder(keyroll::open(&format!("file://{}", path.display())).unwrap())
        .interval(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let signer = Signer::new(refresher.keyring().clone()).with_salt("facade");
    let token = signer.sign("v").unwrap();
    let mut changes = refresher.keyring().subscribe();
    let staging = dir.path().join("keys.tmp");
    std::fs::write(
        &staging,
        format!("facade-test-key-two-0123456789abcdefghijklmnop\n{old}\n"),
    )
    .unwrap();
    std::fs::rename(&staging, &path).unwrap();
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("the file watch applies the change")
        .unwrap();
    let verified = signer.verify(&token).unwrap();
    assert!(verified.needs_resign());
    assert!(!signer.verify(&signer.sign("v").unwrap()).unwrap().needs_resign());
    refresher.shutdown().await;
}
