//! The file provider passes the shared conformance suite in both formats,
//! with the file written by an operator's tools and by `rotate` itself.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use keyroll_core::{KeyMaterial, KeyProvider, async_trait};
use keyroll_file::{FileProvider, Format};
use keyroll_testkit::conformance::{self, Capabilities, TestStore};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Writes `contents` the way deployment tools do: a temporary file in the
/// same directory, renamed over the key file.
fn replace(path: &Path, contents: &str) {
    let temp = path.with_extension("incoming");
    std::fs::write(&temp, contents).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A key file that does not exist, next to `path`.
fn absent(path: &Path) -> Box<dyn KeyProvider> {
    Box::new(FileProvider::new(path.with_file_name("never-written")))
}

/// An empty key file next to `path`, in `format`.
fn empty(path: &Path, format: Option<Format>) -> Box<dyn KeyProvider> {
    let empty = path.with_file_name("empty");
    replace(&empty, "");
    let provider = FileProvider::new(empty);
    Box::new(match format {
        Some(format) => provider.with_format(format),
        None => provider,
    })
}

/// A plain text key file; a rotation puts the new key on the first line.
/// Its name holds what a URI must escape, so the suite's `source()` round
/// trip covers it.
#[derive(Debug)]
struct TextFile {
    _dir: TempDir,
    path: PathBuf,
}

impl TextFile {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret key %41 ?#&=+ ü");
        Self { _dir: dir, path }
    }
}

#[async_trait]
impl TestStore for TextFile {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(FileProvider::new(&self.path))
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        absent(&self.path)
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        empty(&self.path, None)
    }

    async fn publish(&self, material: &str) {
        let existing = std::fs::read_to_string(&self.path).unwrap_or_default();
        replace(
            &self.path,
            &format!("# rotated by the test\n{material}\n{existing}"),
        );
    }
}

/// A JSON key set with creation times and states.
#[derive(Debug)]
struct JsonFile {
    _dir: TempDir,
    path: PathBuf,
    /// Newest first: (key, created, state).
    entries: Mutex<Vec<(String, SystemTime, &'static str)>>,
}

impl JsonFile {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        Self {
            _dir: dir,
            path,
            entries: Mutex::default(),
        }
    }

    fn write(&self, entries: &[(String, SystemTime, &'static str)]) {
        let keys: Vec<serde_json::Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (key, created, state))| {
                serde_json::json!({
                    "id": format!("v{}", entries.len() - i),
                    "key": key,
                    "created": OffsetDateTime::from(*created).format(&Rfc3339).unwrap(),
                    "state": state,
                })
            })
            .collect();
        replace(&self.path, &serde_json::json!({ "keys": keys }).to_string());
    }
}

#[async_trait]
impl TestStore for JsonFile {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(FileProvider::new(&self.path).with_format(Format::Json))
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        absent(&self.path)
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        empty(&self.path, Some(Format::Json))
    }

    async fn publish(&self, material: &str) {
        let mut entries = self.entries.lock().unwrap();
        entries.insert(0, (material.to_owned(), SystemTime::now(), "enabled"));
        self.write(&entries);
    }

    async fn disable(&self, material: &str) -> bool {
        let mut entries = self.entries.lock().unwrap();
        let Some(entry) = entries.iter_mut().find(|(key, _, _)| key == material) else {
            return false;
        };
        entry.2 = "disabled";
        self.write(&entries);
        true
    }
}

/// A key file that is only ever written by `FileProvider::rotate`.
#[derive(Debug)]
struct RotatedFile {
    _dir: TempDir,
    provider: FileProvider,
}

impl RotatedFile {
    fn new(name: &str, format: Format) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let provider = FileProvider::new(dir.path().join(name)).with_format(format);
        Self { _dir: dir, provider }
    }
}

#[async_trait]
impl TestStore for RotatedFile {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(self.provider.clone())
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        absent(self.provider.path())
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        empty(self.provider.path(), self.provider.format())
    }

    async fn publish(&self, material: &str) {
        self.provider
            .rotate(&KeyMaterial::from(material))
            .await
            .expect("rotate publishes the key");
    }
}

#[test]
fn source_reads_back_the_same_file_whatever_its_name() {
    for path in [
        "/a b/c",
        "/100%/x?y#z",
        "/k&e=y+s",
        "/ключи/é",
        "/tab\there",
        "/%2F/%3F",
        "//x//y/",
    ] {
        for format in [None, Some(Format::Text), Some(Format::Json)] {
            let provider = FileProvider::new(path);
            let provider = match format {
                Some(format) => provider.with_format(format),
                None => provider,
            };
            assert_eq!(
                conformance::source_reads_back::<FileProvider>(&provider),
                provider
            );
        }
    }
}

#[tokio::test]
async fn plain_text_file_passes_the_conformance_suite() {
    conformance::run::<FileProvider>(&TextFile::new(), Capabilities::new()).await;
}

#[tokio::test]
async fn json_key_set_passes_the_conformance_suite() {
    let caps = Capabilities::new().with_created_times().with_disable();
    conformance::run::<FileProvider>(&JsonFile::new(), caps).await;
}

#[tokio::test]
async fn plain_file_written_by_rotate_passes_the_conformance_suite() {
    conformance::run::<FileProvider>(&RotatedFile::new("keys", Format::Text), Capabilities::new()).await;
}

#[tokio::test]
async fn json_file_written_by_rotate_passes_the_conformance_suite() {
    let caps = Capabilities::new().with_created_times();
    conformance::run::<FileProvider>(&RotatedFile::new("keys.json", Format::Json), caps).await;
}
