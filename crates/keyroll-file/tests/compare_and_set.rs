//! `publish_if` on key files: writers that read the same newest key take the
//! file's lock in turn, so exactly one publishes; the lock of a crashed
//! writer is broken once stale, a live one is waited for.

use std::path::Path;
use std::time::{Duration, SystemTime};

use keyroll_core::{KeyMaterial, KeyProvider, ProviderErrorKind, Published};
use keyroll_file::{FileProvider, Format, LOCK_STALE, lock_path};
use keyroll_testkit::conformance::strong_key;

const WRITERS: usize = 8;

/// The outcome of one writer: published, or the error's kind.
type Outcome = Result<Published, ProviderErrorKind>;

fn publish_blocking(provider: &FileProvider, expected: Option<&str>) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(provider.publish_if(&KeyMaterial::from(strong_key()), expected))
        .map_err(|e| e.kind())
}

/// `WRITERS` writers over `expected`: half on OS threads of their own, half
/// as tasks of this runtime, each with its own provider.
async fn race(provider: &FileProvider, expected: Option<&str>) -> Vec<Published> {
    let threads: Vec<_> = (0..WRITERS / 2)
        .map(|_| {
            let provider = provider.clone();
            let expected = expected.map(str::to_owned);
            std::thread::spawn(move || publish_blocking(&provider, expected.as_deref()))
        })
        .collect();
    let tasks: Vec<_> = (0..WRITERS / 2)
        .map(|_| {
            let provider = provider.clone();
            let expected = expected.map(str::to_owned);
            tokio::spawn(async move {
                provider
                    .publish_if(&KeyMaterial::from(strong_key()), expected.as_deref())
                    .await
                    .map_err(|e| e.kind())
            })
        })
        .collect();
    let mut outcomes: Vec<Outcome> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let mut published = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(done) => published.push(done),
            Err(kind) => assert_eq!(kind, ProviderErrorKind::Conflict),
        }
    }
    published
}

fn age(path: &Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_that_read_the_same_key_publish_exactly_one() {
    for format in [Format::Json, Format::Text] {
        let dir = tempfile::tempdir().unwrap();
        let provider = FileProvider::new(dir.path().join("keys")).with_format(format);
        assert!(provider.capabilities().compare_and_set);
        provider.rotate(&KeyMaterial::from(strong_key())).await.unwrap();
        let first = provider.fetch().await.unwrap()[0].id.clone();

        let published = race(&provider, Some(&first)).await;
        assert_eq!(
            published.len(),
            1,
            "{format}: exactly one publishes: {published:?}"
        );
        let versions = provider.fetch().await.unwrap();
        assert_eq!(versions.len(), 2, "{format}: one new key: {versions:?}");
        assert_eq!(versions[0].id, published[0].id);
        assert_eq!(
            versions[0].created.is_some(),
            format == Format::Json,
            "{format}: only a JSON key set keeps creation times"
        );
        assert_eq!(published[0].created, versions[0].created);

        // A writer that read the file before that write is refused later too,
        // as is one that expects no key.
        for stale in [Some(first.as_str()), None] {
            let key = strong_key();
            let late = provider
                .publish_if(&KeyMaterial::from(key.as_str()), stale)
                .await
                .expect_err("the file changed");
            assert_eq!(late.kind(), ProviderErrorKind::Conflict, "{late}");
            assert!(
                !format!("{late} {late:?}").contains(&key),
                "no key material in errors"
            );
        }
        assert_eq!(provider.fetch().await.unwrap().len(), 2);
        assert!(
            !lock_path(provider.path()).exists(),
            "every writer released the lock"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_on_a_missing_file_create_it_with_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let provider = FileProvider::new(dir.path().join("keys.json")).with_format(Format::Json);
    let published = race(&provider, None).await;
    assert_eq!(published.len(), 1, "{published:?}");
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions.len(), 1);
    assert!(versions[0].created.is_some());

    // A file without keys counts as no key too.
    std::fs::write(provider.path(), "{\"keys\": []}").unwrap();
    assert_eq!(race(&provider, None).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lock_is_broken_and_a_fresh_one_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let provider = FileProvider::new(dir.path().join("keys.json")).with_format(Format::Json);
    provider.rotate(&KeyMaterial::from(strong_key())).await.unwrap();
    let first = provider.fetch().await.unwrap()[0].id.clone();
    let lock = lock_path(provider.path());

    // A writer crashed holding the lock: once older than the bound, it is broken.
    std::fs::write(&lock, "keyroll writer 1 0 0\n").unwrap();
    age(&lock, LOCK_STALE + Duration::from_secs(1));
    let second = provider
        .publish_if(&KeyMaterial::from(strong_key()), Some(&first))
        .await
        .expect("a stale lock does not block");
    assert!(!lock.exists());

    // A live writer holds the lock: the next one waits for it.
    std::fs::write(&lock, "keyroll writer 1 0 1\n").unwrap();
    let waiting = {
        let provider = provider.clone();
        let expected = second.id.clone();
        tokio::spawn(async move {
            provider
                .publish_if(&KeyMaterial::from(strong_key()), Some(&expected))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a writer waits while a fresh lock is held"
    );
    assert_eq!(provider.fetch().await.unwrap()[0].id, second.id);
    std::fs::remove_file(&lock).unwrap();
    let third = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the writer goes on once the lock is released")
        .unwrap()
        .expect("the file is still as it expected");
    assert_eq!(provider.fetch().await.unwrap()[0].id, third.id);

    // `rotate` takes the same lock.
    std::fs::write(&lock, "keyroll writer 1 0 2\n").unwrap();
    let rotating = {
        let provider = provider.clone();
        tokio::spawn(async move { provider.rotate(&KeyMaterial::from(strong_key())).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!rotating.is_finished());
    std::fs::remove_file(&lock).unwrap();
    rotating.await.unwrap().unwrap();
    assert_eq!(provider.fetch().await.unwrap().len(), 4);
}
