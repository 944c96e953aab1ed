//! Change notifications for key files, with `notify`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keyroll_core::{ChangeWatch, ProviderError};
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Watches the files at `paths` for changes: each file's directory is
/// watched (not recursively), so an atomic rename over the file, an in-place
/// rewrite, and a Kubernetes `..data` symlink swap are all seen. When a path
/// is a symlink into another directory, that directory is watched as well.
///
/// Any change in a watched directory fires the watch (a refresh reads the
/// files again and finds nothing new if an unrelated file changed); opening
/// and reading files does not, so the refresh's own read cannot loop.
///
/// ```no_run
/// # fn demo() -> Result<(), keyroll_core::ProviderError> {
/// let watch = keyroll_file::watch_files([std::path::Path::new("/etc/myapp/keys")])?;
/// # Ok(()) }
/// ```
pub fn watch_files<'p>(paths: impl IntoIterator<Item = &'p Path>) -> Result<ChangeWatch, ProviderError> {
    let mut dirs = BTreeSet::new();
    for path in paths {
        let dir = parent(path);
        if let Ok(target) = std::fs::canonicalize(path) {
            let target_dir = parent(&target);
            if !target_dir.starts_with(&dir) {
                dirs.insert(target_dir);
            }
        }
        dirs.insert(dir);
    }
    let (changes, receiver) = mpsc::channel(8);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        let relevant = match &event {
            Ok(event) => match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            },
            // A watcher error (queue overflow) may hide a change: refresh.
            Err(_) => true,
        };
        if relevant {
            // A full queue already holds a pending refresh.
            let _ = changes.try_send(());
        }
    })
    .map_err(|e| ProviderError::unavailable(format!("cannot start a file watcher: {e}")).with_source(e))?;
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|e| {
            ProviderError::unavailable(format!("cannot watch directory {}: {e}", dir.display()))
                .with_source(e)
        })?;
    }
    tracing::debug!(dirs = ?dirs, "watching key file directories");
    Ok(ChangeWatch::new(receiver, watcher))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
