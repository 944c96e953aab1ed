//! The writers' lock of a key file: `<file>.lock`, created exclusively.
//!
//! Every write keyroll makes to a key file ([`KeyProvider::rotate`] and
//! [`KeyProvider::publish_if`](keyroll_core::KeyProvider::publish_if)) holds
//! it from reading the file to renaming the new one over it, so writers on
//! one host (or on a shared file system with atomic exclusive create)
//! publish one after the other, each over what the previous one wrote.
//!
//! - **Taking it**: `create_new` (`O_CREAT | O_EXCL`) of the lock file, which
//!   holds a token unique to this writer. While another writer holds a fresh
//!   lock, a writer waits, polling, up to [`LOCK_WAIT`], then fails with
//!   [`Unavailable`](keyroll_core::ProviderErrorKind::Unavailable).
//! - **Stale locks**: a lock file last modified more than [`LOCK_STALE`] ago
//!   (or that far in the future) was left by a writer that crashed. A waiter
//!   breaks it by renaming it to a name of its own (an atomic step only one
//!   writer wins), removes that, and takes the lock anew.
//! - **Committing**: a holder renames its new file over the key file only
//!   while the lock file still holds its token and less than half of
//!   [`LOCK_STALE`] has passed since it took the lock; otherwise it gives up
//!   ([`Conflict`](keyroll_core::ProviderErrorKind::Conflict), nothing
//!   written). So a lock is only broken after its holder stopped writing,
//!   unless the holder stalls for over half the bound between that check and
//!   its rename.
//! - **Releasing**: the holder removes the lock file if it still holds its
//!   token.
//!
//! [`KeyProvider::rotate`]: keyroll_core::KeyProvider::rotate

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A lock file older than this (10 s) was left by a writer that crashed and
/// is broken. A write under the lock takes milliseconds; a holder commits
/// only within half of it.
pub const LOCK_STALE: Duration = Duration::from_secs(10);

/// How long a writer waits for another writer's lock (30 s) before it gives
/// up: long enough for a crashed writer's lock to turn stale and be broken.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting writer looks at the lock again.
const POLL: Duration = Duration::from_millis(5);

/// Why a writer could not take or keep a key file's lock. Never holds key
/// material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another writer held the lock for all of [`LOCK_WAIT`].
    #[error("another writer held the lock {} for {LOCK_WAIT:?}", .0.display())]
    Busy(PathBuf),
    /// The lock was broken as stale, or half of [`LOCK_STALE`] passed, before
    /// this writer committed: it wrote nothing.
    #[error("the lock {} was lost before the new file was committed; nothing was written", .0.display())]
    Lost(PathBuf),
    /// The lock file could not be created, read or removed.
    #[error("cannot use the lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// The lock file of the key file at `target`: `<name>.lock` beside it.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    target.with_file_name(name)
}

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    path: PathBuf,
    token: String,
    taken: Instant,
}

impl FileLock {
    /// Takes the lock of the key file at `target`, waiting for another
    /// writer's and breaking a stale one.
    pub(crate) fn acquire(target: &Path) -> Result<Self, LockError> {
        let path = lock_path(target);
        let token = token();
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let started = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let written = file.write_all(token.as_bytes()).and_then(|()| file.sync_all());
                    let lock = Self {
                        path: path.clone(),
                        token,
                        taken: Instant::now(),
                    };
                    // On failure the drop removes the half-written lock.
                    written.map_err(io)?;
                    return Ok(lock);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(io(error)),
            }
            match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(modified) if is_stale(modified) => break_stale(&path).map_err(io)?,
                // Released meanwhile: try again at once.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io(error)),
                Ok(_) if started.elapsed() >= LOCK_WAIT => return Err(LockError::Busy(path)),
                Ok(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// Whether this writer may still commit: the lock file holds its token
    /// and less than half of [`LOCK_STALE`] passed since it was taken.
    pub(crate) fn check(&self) -> Result<(), LockError> {
        let held = std::fs::read(&self.path).is_ok_and(|held| held == self.token.as_bytes());
        if held && self.taken.elapsed() < LOCK_STALE / 2 {
            Ok(())
        } else {
            Err(LockError::Lost(self.path.clone()))
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if std::fs::read(&self.path).is_ok_and(|held| held == self.token.as_bytes())
            && let Err(error) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(lock = %self.path.display(), %error, "cannot remove the key file's lock");
        }
    }
}

/// Modified more than [`LOCK_STALE`] ago, or that far in the future.
fn is_stale(modified: SystemTime) -> bool {
    let now = SystemTime::now();
    let age = match now.duration_since(modified) {
        Ok(age) => age,
        Err(ahead) => ahead.duration(),
    };
    age > LOCK_STALE
}

/// Moves the stale lock at `path` to a name of this writer's own, then
/// removes it: of many writers breaking the same lock, one rename succeeds.
/// (A writer that moved a lock taken meanwhile only makes its holder give up
/// at its commit check.)
fn break_stale(path: &Path) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".stale-{}", token()));
    let aside = path.with_file_name(name);
    match std::fs::rename(path, &aside) {
        Ok(()) => {
            tracing::warn!(lock = %path.display(), "broke a stale key file lock left by a writer that stopped");
            std::fs::remove_file(&aside)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// A token no other writer holds: process id, time and a counter.
fn token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!(
        "keyroll writer {} {nanos} {}\n",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_sits_beside_the_key_file() {
        assert_eq!(
            lock_path(Path::new("/etc/app/keys.json")),
            Path::new("/etc/app/keys.json.lock")
        );
    }

    #[test]
    fn a_lock_is_stale_past_the_bound_either_way() {
        let now = SystemTime::now();
        assert!(!is_stale(now));
        assert!(!is_stale(now - LOCK_STALE / 2));
        assert!(is_stale(now - LOCK_STALE * 2));
        assert!(is_stale(now + LOCK_STALE * 2));
    }

    #[test]
    fn a_holder_loses_its_lock_when_another_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("keys");
        let lock = FileLock::acquire(&target).unwrap();
        lock.check().unwrap();
        break_stale(&lock_path(&target)).unwrap();
        let other = FileLock::acquire(&target).unwrap();
        assert!(matches!(lock.check(), Err(LockError::Lost(_))));
        drop(lock);
        assert!(
            lock_path(&target).exists(),
            "a lost lock never removes the new holder's"
        );
        drop(other);
        assert!(!lock_path(&target).exists());
    }
}
