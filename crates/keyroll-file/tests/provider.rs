//! What the file provider reads, refuses and writes, on real files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use keyroll_core::{
    FirstSeen, FromSource, KeyMaterial, KeyProvider, KeySet, KeyState, KeyVersion, Policy, ProviderErrorKind,
    Role,
};
use keyroll_file::{FileProvider, Format};
use keyroll_testkit::conformance::{assert_no_material, strong_key};

fn evaluate(versions: &[KeyVersion], now: SystemTime) -> KeySet {
    let mut first_seen = FirstSeen::new();
    first_seen.observe(versions, now);
    Policy::default()
        .with_activation_delay(Duration::ZERO)
        .evaluate(versions, &first_seen, now)
        .expect("a usable key set")
}

fn material(version: &KeyVersion) -> &[u8] {
    version.material.expose_secret()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> FileProvider {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    FileProvider::new(path)
}

async fn fetch_error(provider: &FileProvider) -> keyroll_core::ProviderError {
    provider.fetch().await.expect_err("the file must be refused")
}

#[tokio::test]
async fn plain_text_first_key_signs_and_later_lines_are_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let (current, older, oldest) = (strong_key(), strong_key(), strong_key());
    let provider = write(
        dir.path(),
        "keys",
        format!("# rotated 2026-11-01\n\n   {current}  \n# fallbacks\n\t{older}\n\n{oldest}\n"),
    );
    let versions = provider.fetch().await.unwrap();
    let keys: Vec<&[u8]> = versions.iter().map(material).collect();
    assert_eq!(keys, [current.as_bytes(), older.as_bytes(), oldest.as_bytes()]);

    let set = evaluate(&versions, SystemTime::now());
    let now = SystemTime::now();
    assert_eq!(
        set.signing_key_at(now).material().expose_secret(),
        current.as_bytes()
    );
    let roles: Vec<Role> = set.verifying_keys_at(now).map(|(_, role)| role).collect();
    assert_eq!(roles, [Role::Current, Role::Fallback, Role::Fallback]);
}

#[tokio::test]
async fn plain_text_ids_are_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let key = strong_key();
    let versions = write(dir.path(), "keys", &key).fetch().await.unwrap();
    assert_eq!(versions[0].id, KeyMaterial::from(key.as_str()).fingerprint());
    assert_eq!(versions[0].created, None, "plain files keep no creation time");
}

#[tokio::test]
async fn a_file_of_only_comments_and_blank_lines_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_error(&write(dir.path(), "keys", "# nothing yet\n\n   \n")).await;
    assert_eq!(err.kind(), ProviderErrorKind::Invalid);
    assert!(err.to_string().contains("holds no key"), "{err}");
}

#[tokio::test]
async fn a_line_that_is_not_utf8_is_named_by_number_without_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let key = strong_key();
    let mut contents = format!("{key}\n# comment\n").into_bytes();
    contents.extend_from_slice(b"\xff\xfe-binary-key\n");
    let err = fetch_error(&write(dir.path(), "keys", contents)).await;
    assert_eq!(err.kind(), ProviderErrorKind::Invalid);
    assert!(err.to_string().contains("line 3"), "{err}");
    assert_no_material("error", &err.to_string(), &key);
    assert!(!err.to_string().contains("binary-key"), "{err}");
}

#[tokio::test]
async fn format_parameter_overrides_detection() {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("{{{}", strong_key());
    let path = dir.path().join("keys");
    std::fs::write(&path, &key).unwrap();
    let uri = format!("file://{}?format=text", path.display());
    let provider = FileProvider::from_uri(&uri).unwrap();
    assert_eq!(provider.format(), Some(Format::Text));
    assert_eq!(provider.source(), uri);
    assert_eq!(material(&provider.fetch().await.unwrap()[0]), key.as_bytes());
    let detected = FileProvider::new(&path).fetch().await.unwrap_err();
    assert!(detected.to_string().contains("JSON"), "{detected}");
}

#[test]
fn uris_need_an_absolute_path_and_a_known_format() {
    let parse = |uri: &str| FileProvider::from_uri(uri);
    let provider = parse("file:///etc/myapp/keys.json?format=json").unwrap();
    assert_eq!(provider.path(), Path::new("/etc/myapp/keys.json"));
    assert_eq!(provider.format(), Some(Format::Json));
    assert_eq!(parse("file:///etc/myapp/keys").unwrap().format(), None);
    for (uri, says) in [
        ("file://keys", "absolute path"),
        ("file:///etc/keys?format=yaml", "format=text or format=json"),
        ("file:///etc/keys?mode=fast", "unknown parameter `mode`"),
    ] {
        let err = parse(uri).unwrap_err();
        assert_eq!(err.kind(), ProviderErrorKind::Config, "{uri}");
        assert!(err.to_string().contains(says), "{uri}: {err}");
    }
}

#[tokio::test]
async fn a_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_error(&FileProvider::new(dir.path().join("absent"))).await;
    assert_eq!(err.kind(), ProviderErrorKind::NotFound);
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn a_directory_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_error(&FileProvider::new(dir.path())).await;
    assert_eq!(err.kind(), ProviderErrorKind::Config);
}

#[tokio::test]
async fn an_unreadable_file_is_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let provider = write(dir.path(), "keys", strong_key());
    std::fs::set_permissions(provider.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(provider.path()).is_ok() {
        eprintln!(
            "SKIPPED: running with privileges that read a mode-000 file; cannot produce a permission error"
        );
        return;
    }
    let err = fetch_error(&provider).await;
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied);
}

#[tokio::test]
async fn json_key_set_reports_ids_times_and_states() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (strong_key(), strong_key(), strong_key());
    let provider = write(
        dir.path(),
        "keys.json",
        format!(
            r#"
            {{"keys": [
              {{"id": "2026-11", "key": "{a}", "created": "2026-11-01T00:00:00Z",
                "activates": "2026-11-02T12:00:00+01:00"}},
              {{"id": "2026-10", "key": "{b}", "created": "2026-10-01T00:00:00Z",
                "expires": "2027-01-01T00:00:00Z", "state": "enabled"}},
              {{"key": "{c}", "state": "disabled"}}
            ]}}"#
        ),
    );
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions.len(), 3);
    let at = |text: &str| {
        SystemTime::from(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap(),
        )
    };
    assert_eq!(versions[0].id, "2026-11");
    assert_eq!(material(&versions[0]), a.as_bytes());
    assert_eq!(versions[0].created, Some(at("2026-11-01T00:00:00Z")));
    assert_eq!(versions[0].activates, Some(at("2026-11-02T11:00:00Z")));
    assert_eq!(versions[1].expires, Some(at("2027-01-01T00:00:00Z")));
    assert_eq!(versions[1].state, KeyState::Enabled);
    assert_eq!(
        versions[2].id,
        KeyMaterial::from(c.as_str()).fingerprint(),
        "id defaults to the fingerprint"
    );
    assert_eq!(versions[2].state, KeyState::Disabled);
}

#[tokio::test]
async fn json_key_base64_holds_binary_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0u8..48).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let provider = write(
        dir.path(),
        "keys.json",
        format!(r#"{{"keys": [{{"id": "bin", "key_base64": "{encoded}"}}]}}"#),
    );
    assert_eq!(material(&provider.fetch().await.unwrap()[0]), bytes.as_slice());
}

#[tokio::test]
async fn json_states_and_times_go_through_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..5).map(|_| strong_key()).collect();
    let now = time::OffsetDateTime::now_utc();
    let rfc = |offset: time::Duration| {
        (now + offset)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let provider = write(
        dir.path(),
        "keys.json",
        format!(
            r#"{{"keys": [
              {{"id": "future", "key": "{}", "created": "{}", "activates": "{}"}},
              {{"id": "disabled", "key": "{}", "created": "{}", "state": "disabled"}},
              {{"id": "current", "key": "{}", "created": "{}"}},
              {{"id": "destroyed", "key": "{}", "created": "{}", "state": "destroyed"}},
              {{"id": "expired", "key": "{}", "created": "{}", "expires": "{}"}}
            ]}}"#,
            keys[0],
            rfc(time::Duration::minutes(-1)),
            rfc(time::Duration::hours(1)),
            keys[1],
            rfc(time::Duration::minutes(-2)),
            keys[2],
            rfc(time::Duration::minutes(-3)),
            keys[3],
            rfc(time::Duration::minutes(-4)),
            keys[4],
            rfc(time::Duration::minutes(-5)),
            rfc(time::Duration::minutes(-1)),
        ),
    );
    let set = evaluate(&provider.fetch().await.unwrap(), SystemTime::now());
    let now = SystemTime::now();
    let roles: Vec<(&str, Role)> = set
        .verifying_keys_at(now)
        .map(|(k, role)| (k.id(), role))
        .collect();
    assert_eq!(
        roles,
        [("current", Role::Current), ("future", Role::Pending)],
        "a key activating later only verifies; disabled, destroyed and expired keys never verify"
    );
    assert_eq!(set.signing_key_at(now + Duration::from_secs(7200)).id(), "future");
}

#[tokio::test]
async fn invalid_json_names_line_and_column_but_no_key_text() {
    let dir = tempfile::tempdir().unwrap();
    let key = strong_key();
    let cases = [
        (
            format!("{{\"keys\": [\n  {{\"id\": \"a\", \"key\": \"{key}\"\n"),
            "line 3",
        ),
        (
            format!("{{\"keys\": [\n  {{\"id\": \"a\", \"key\": \"{key}\", \"colour\": \"x\"}}]}}"),
            "line 2, column 81: does not match the key set schema",
        ),
        (format!("{{\"keys\": [\n  \"{key}\"]}}"), "line 2"),
        (
            format!("{{\"keys\": [{{\"key\": \"{key}\", \"state\": \"{key}\"}}]}}"),
            "`enabled`, `disabled` or `destroyed`",
        ),
        (
            format!("{{\"keys\": [{{\"key\": \"{key}\", \"created\": \"{key}\"}}]}}"),
            "line 1",
        ),
        (
            format!("{{\"keys\": [{{\"id\": \"a\", \"key\": \"{key}\", \"key_base64\": \"AAAA\"}}]}}"),
            "exactly one of",
        ),
        (
            format!("{{\"keys\": [{{\"id\": \"a\", \"key_base64\": \"{key}!\"}}]}}"),
            "not valid base64",
        ),
        (
            format!(
                "{{\"keys\": [{{\"id\": \"a\", \"key\": \"{key}\"}}, {{\"id\": \"a\", \"key\": \"{key}x\"}}]}}"
            ),
            "used by entry 1",
        ),
        (
            format!(
                "{{\"keys\": [{{\"key\": \"{key}\", \"created\": \"2026-01-01T00:00:00Z\"}}, {{\"key\": \"{key}x\", \"created\": \"2026-02-01T00:00:00Z\"}}]}}"
            ),
            "newest first",
        ),
        ("{\"keys\": []}".to_owned(), "empty \"keys\" list"),
        (r#"{"keys": [{"id": "a", "key": ""}]}"#.to_owned(), "key is empty"),
    ];
    for (contents, says) in cases {
        let err = fetch_error(&write(dir.path(), "keys.json", &contents)).await;
        let shown = err.to_string();
        assert_eq!(err.kind(), ProviderErrorKind::Invalid, "{shown}");
        assert!(shown.contains(says), "expected `{says}` in: {shown}");
        assert_no_material("error", &shown, &key);
        assert_no_material("error debug", &format!("{err:?}"), &key);
    }
}

#[tokio::test]
async fn rotate_puts_the_new_key_first_keeping_lines_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (strong_key(), strong_key());
    let provider = write(dir.path(), "keys", format!("# managed by keyroll\n{old}\n"));
    std::fs::set_permissions(provider.path(), std::fs::Permissions::from_mode(0o640)).unwrap();

    let published = provider.rotate(&KeyMaterial::from(new.as_str())).await.unwrap();
    assert_eq!(published.id, KeyMaterial::from(new.as_str()).fingerprint());
    assert_eq!(published.created, None);
    assert_eq!(
        std::fs::read_to_string(provider.path()).unwrap(),
        format!("{new}\n# managed by keyroll\n{old}\n")
    );
    let mode = std::fs::metadata(provider.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "rotation keeps the file's permissions");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[tokio::test]
async fn rotate_json_prepends_an_entry_with_fingerprint_id_and_creation_time() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (strong_key(), strong_key());
    let provider = write(
        dir.path(),
        "keys.json",
        format!(r#"{{"keys": [{{"id": "2026-10", "key": "{old}", "created": "2026-10-01T00:00:00Z"}}]}}"#),
    );
    let before = SystemTime::now();
    let published = provider.rotate(&KeyMaterial::from(new.as_str())).await.unwrap();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].id, published.id);
    assert_eq!(versions[0].id, KeyMaterial::from(new.as_str()).fingerprint());
    assert_eq!(material(&versions[0]), new.as_bytes());
    assert_eq!(versions[0].created, published.created);
    assert!(published.created.unwrap() >= before);
    assert_eq!(versions[1].id, "2026-10", "existing entries are kept");
}

#[tokio::test]
async fn rotate_creates_a_missing_file_readable_only_by_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let provider = FileProvider::new(dir.path().join("keys"));
    let key = strong_key();
    provider.rotate(&KeyMaterial::from(key.as_str())).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(provider.path()).unwrap(),
        format!("{key}\n")
    );
    let mode = std::fs::metadata(provider.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn rotate_refuses_a_key_already_in_the_file_and_keys_plain_text_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let key = strong_key();
    let provider = write(dir.path(), "keys", format!("{key}\n"));
    let err = provider
        .rotate(&KeyMaterial::from(key.as_str()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already in the file"), "{err}");
    assert_no_material("error", &err.to_string(), &key);
    let err = provider
        .rotate(&KeyMaterial::from(format!("{key}\nsecond")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("JSON key set"), "{err}");
    assert_eq!(
        std::fs::read_to_string(provider.path()).unwrap(),
        format!("{key}\n"),
        "unchanged"
    );
}

#[tokio::test]
async fn rotate_writes_through_a_symlink_to_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (strong_key(), strong_key());
    std::fs::write(dir.path().join("real-keys"), format!("{old}\n")).unwrap();
    std::os::unix::fs::symlink("real-keys", dir.path().join("keys")).unwrap();
    let provider = FileProvider::new(dir.path().join("keys"));
    provider.rotate(&KeyMaterial::from(new.as_str())).await.unwrap();
    assert!(
        std::fs::symlink_metadata(provider.path()).unwrap().is_symlink(),
        "the link stays a link"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("real-keys")).unwrap(),
        format!("{new}\n{old}\n")
    );
}

#[tokio::test]
async fn debug_and_errors_never_show_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = strong_key();
    let provider = write(dir.path(), "keys", format!("{key}\n"));
    let versions = provider.fetch().await.unwrap();
    assert_no_material("provider", &format!("{provider:?}"), &key);
    assert_no_material("versions", &format!("{versions:?}"), &key);
}

#[tokio::test]
async fn a_file_larger_than_the_limit_is_refused_without_reading_it_all() {
    let provider = FileProvider::new("/dev/zero");
    let started = std::time::Instant::now();
    let error = fetch_error(&provider).await;
    assert_eq!(error.kind(), ProviderErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("larger than 1048576 bytes"), "{error}");
    println!("/dev/zero refused after {:?}", started.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let limit = usize::try_from(keyroll_file::MAX_KEY_FILE_BYTES).unwrap();
    let key = strong_key();
    let mut at_limit = format!("{key}\n").into_bytes();
    at_limit.resize(limit, b'\n');
    assert_eq!(
        write(dir.path(), "at-limit", &at_limit)
            .fetch()
            .await
            .unwrap()
            .len(),
        1
    );
    at_limit.push(b'\n');
    let error = fetch_error(&write(dir.path(), "over-limit", &at_limit)).await;
    assert_eq!(error.kind(), ProviderErrorKind::Invalid, "{error}");
    assert_no_material("the size error", &error.to_string(), &key);
}

#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What reading `provider` twice logs.
fn logs_of_two_reads(provider: &FileProvider) -> String {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        provider.read().unwrap();
        provider.read().unwrap();
    });
    String::from_utf8(logs.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn a_key_file_readable_by_group_or_others_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, warned) in [
        (0o600, false),
        (0o400, false),
        (0o640, true),
        (0o604, true),
        (0o644, true),
    ] {
        let name = format!("keys-{mode:o}");
        let provider = write(dir.path(), &name, format!("{}\n", strong_key()));
        std::fs::set_permissions(dir.path().join(&name), std::fs::Permissions::from_mode(mode)).unwrap();
        let logs = logs_of_two_reads(&provider);
        let warnings = logs.matches("readable by group or others").count();
        assert_eq!(warnings, usize::from(warned), "mode {mode:o}: {logs}");
        if warned {
            assert!(logs.contains(&format!("mode={mode:04o}")), "{logs}");
        }
    }
}
