//! The Docker secrets provider passes the shared conformance suite, with
//! fallbacks given both ways: lines of one secret, and a second secret.

use std::path::{Path, PathBuf};

use keyroll_core::{KeyProvider, async_trait};
use keyroll_docker::DockerProvider;
use keyroll_testkit::conformance::{self, Capabilities, TestStore};
use tempfile::TempDir;

/// Replaces a secret file the way kubelet and deploy tools do: write aside,
/// rename over.
fn replace(path: &Path, contents: &str) {
    let temp = path.with_extension("incoming");
    std::fs::write(&temp, contents).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A secret the container was not given.
fn absent(root: &Path) -> Box<dyn KeyProvider> {
    Box::new(DockerProvider::new("not_granted").unwrap().with_root(root))
}

/// A secret that was mounted empty.
fn empty(root: &Path) -> Box<dyn KeyProvider> {
    replace(&root.join("empty_key"), "");
    Box::new(DockerProvider::new("empty_key").unwrap().with_root(root))
}

/// One secret holding the new key first and every older key after it.
#[derive(Debug)]
struct MultiLineSecret {
    root: TempDir,
}

impl MultiLineSecret {
    fn path(&self) -> PathBuf {
        self.root.path().join("app_key")
    }
}

#[async_trait]
impl TestStore for MultiLineSecret {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(
            DockerProvider::new("app_key")
                .unwrap()
                .with_root(self.root.path()),
        )
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        absent(self.root.path())
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        empty(self.root.path())
    }

    async fn publish(&self, material: &str) {
        let existing = std::fs::read_to_string(self.path()).unwrap_or_default();
        replace(&self.path(), &format!("{material}\n{existing}"));
    }
}

/// The new key in `app_key`, the one before it moved to `app_key_previous`
/// (`docker://app_key?fallbacks=app_key_previous`).
#[derive(Debug)]
struct PreviousSecret {
    root: TempDir,
}

#[async_trait]
impl TestStore for PreviousSecret {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(
            DockerProvider::new("app_key")
                .unwrap()
                .with_root(self.root.path())
                .with_fallbacks(["app_key_previous"])
                .unwrap(),
        )
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        absent(self.root.path())
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        empty(self.root.path())
    }

    async fn publish(&self, material: &str) {
        let current = self.root.path().join("app_key");
        let previous = std::fs::read_to_string(&current).unwrap_or_else(|_| format!("{material}\n"));
        replace(&self.root.path().join("app_key_previous"), &previous);
        replace(&current, &format!("{material}\n"));
    }
}

#[test]
fn source_reads_back_the_same_secrets_whatever_their_names() {
    let awkward = [
        "a b",
        "100%",
        "x?y",
        "k&e=y+s",
        "#1",
        "é",
        "tab\there",
        "%2F",
        "a:b@c",
    ];
    for name in awkward {
        for root in ["/run/secrets", "/a b/100%?/#x&y=z+w", "/ключи"] {
            let fallbacks = awkward.iter().copied().filter(|n| *n != name);
            let provider = DockerProvider::new(name)
                .unwrap()
                .with_root(root)
                .with_fallbacks(fallbacks)
                .unwrap();
            assert_eq!(
                conformance::source_reads_back::<DockerProvider>(&provider),
                provider
            );
        }
    }
}

#[tokio::test]
async fn multi_line_secret_passes_the_conformance_suite() {
    let store = MultiLineSecret {
        root: tempfile::tempdir().unwrap(),
    };
    conformance::run::<DockerProvider>(&store, Capabilities::new()).await;
}

#[tokio::test]
async fn secret_with_a_previous_secret_passes_the_conformance_suite() {
    let store = PreviousSecret {
        root: tempfile::tempdir().unwrap(),
    };
    conformance::run::<DockerProvider>(&store, Capabilities::new()).await;
}
