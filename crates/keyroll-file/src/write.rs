//! Publishing a new key into a key file: prepend, then rename atomically.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyroll_core::{KeyMaterial, ProviderError, ProviderErrorKind, Published};
use tempfile::NamedTempFile;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::format::{Entry, KeyFile, file_time, key_file_bytes, read_key_file};
use crate::lock::{FileLock, LockError};
use crate::{Format, io_error, parse, read_file};

/// Which writes [`prepend`] makes.
#[derive(Debug, Clone)]
pub(crate) enum Only {
    /// Always ([`KeyProvider::rotate`](keyroll_core::KeyProvider::rotate)).
    Always,
    /// Only while the file's newest key has this id (`None`: while the file
    /// is absent or holds no key).
    After(Option<String>),
}

/// Writes `material` as the newest key of the file at `path`, under the
/// file's [lock](crate::lock), when `only` allows, and returns what was
/// published.
pub(crate) fn prepend(
    path: &Path,
    format: Option<Format>,
    material: &KeyMaterial,
    only: &Only,
) -> Result<Published, ProviderError> {
    // Rotating through a symlink replaces the file it points to, not the link.
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        Err(error) if error.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(error) => return Err(io_error(path, "resolve", error)),
    };
    let lock = FileLock::acquire(&target).map_err(|error| lock_error(path, error))?;
    let existing = match read_file(&target) {
        // A file of whitespace holds nothing to keep.
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => None,
        Ok(bytes) => Some(bytes),
        Err(error) if error.kind() == keyroll_core::ProviderErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    let format = format.unwrap_or_else(|| existing.as_deref().map_or(Format::Text, |b| Format::detect(b)));
    let invalid =
        |message: String| ProviderError::invalid(format!("cannot rotate {}: {message}", path.display()));
    let id = material.fingerprint();
    let mut newest = None;
    if let Some(bytes) = &existing {
        match parse(bytes, Some(format)) {
            Ok(versions) => {
                if let Some(same) = versions.iter().find(|v| v.id == id || v.material == *material) {
                    return Err(invalid(format!(
                        "the key is already in the file as {}; generate a new one with `keyroll generate`",
                        same.id
                    )));
                }
                newest = versions.into_iter().next().map(|v| v.id);
            }
            // A file without keys just gets its first key.
            Err(crate::ParseError::Empty | crate::ParseError::NoKeys) => {}
            Err(error) => {
                return Err(invalid(format!(
                    "the file is not a valid key file ({error}); fix it first"
                )));
            }
        }
    }
    if let Only::After(expected) = only
        && newest != *expected
    {
        return Err(ProviderError::new(
            ProviderErrorKind::Conflict,
            format!(
                "key file {}: its newest key is {}, not {}: another writer published meanwhile. Nothing was written",
                path.display(),
                newest.as_deref().unwrap_or("none"),
                expected.as_deref().unwrap_or("none")
            ),
        ));
    }

    let now = SystemTime::now();
    let (contents, published) = match format {
        Format::Text => {
            let key = std::str::from_utf8(material.expose_secret())
                .ok()
                .filter(|key| !key.is_empty() && key.trim() == *key && !key.contains(['\n', '\r']) && !key.starts_with('#'))
                .ok_or_else(|| {
                    invalid(
                        "a plain key file holds text keys on their own lines; this key is binary, has line breaks or surrounding whitespace, or starts with #; use a JSON key set (?format=json)".to_owned(),
                    )
                })?;
            let mut contents = Zeroizing::new(Vec::with_capacity(
                key.len() + 1 + existing.as_ref().map_or(0, |e| e.len()),
            ));
            contents.extend_from_slice(key.as_bytes());
            contents.push(b'\n');
            if let Some(existing) = &existing {
                contents.extend_from_slice(existing);
            }
            (contents, Published::new(id, None))
        }
        Format::Json => {
            let mut file = match &existing {
                Some(bytes) => read_key_file(bytes).map_err(|e| invalid(e.to_string()))?,
                None => KeyFile::default(),
            };
            let (key, key_base64) = match std::str::from_utf8(material.expose_secret()) {
                Ok(text) => (Some(Zeroizing::new(text.to_owned())), None),
                Err(_) => (
                    None,
                    Some(Zeroizing::new(STANDARD.encode(material.expose_secret()))),
                ),
            };
            file.keys.insert(
                0,
                Entry {
                    id: Some(id.clone()),
                    key,
                    key_base64,
                    created: Some(OffsetDateTime::from(now)),
                    ..Entry::default()
                },
            );
            (key_file_bytes(&file), Published::new(id, Some(now)))
        }
    };
    lock.check().map_err(|error| lock_error(path, error))?;
    replace_atomically(&target, &contents, None).map_err(|error| io_error(path, "write", error))?;
    drop(lock);
    tracing::info!(path = %path.display(), id = %published.id, "published a new key");
    Ok(published)
}

/// A provider error for a lock that could not be taken or kept.
fn lock_error(path: &Path, error: LockError) -> ProviderError {
    let message = format!("cannot write key file {}: {error}", path.display());
    match &error {
        LockError::Lost(_) => ProviderError::new(ProviderErrorKind::Conflict, message),
        LockError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            ProviderError::permission_denied(message)
        }
        _ => ProviderError::unavailable(message),
    }
    .with_source(error)
}

/// Writes `contents` to `path` unless the file already holds exactly that:
/// atomically (a temporary file in the same directory, flushed, renamed over
/// the old one: readers see the old file or the new one) and with mode 0600 whatever the
/// old file had. Returns whether it wrote. What `keyroll agent` does on
/// every poll.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> io::Result<bool> {
    match std::fs::read(path).map(Zeroizing::new) {
        Ok(existing) if existing.as_slice() == contents => return Ok(false),
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    replace_atomically(path, contents, Some(0o600))?;
    Ok(true)
}

/// Marks the key file at `path` (a JSON key set, as `keyroll agent` writes
/// it) as unconfirmed since `since`, keeping its keys: what the agent does
/// when it cannot read its store. Readers of a marked file fail their reads
/// (as readers of the store fail theirs), so they keep their last good keys,
/// degraded, until their own `fail_closed_after` closes their keyring; a
/// later write of the store's answer clears the mark. Returns whether it
/// wrote: not when there is no file, or it is already marked (the first
/// failure's moment stays).
///
/// # Errors
/// The file cannot be read or written, or is not a JSON key set.
pub fn mark_unavailable(path: &Path, since: SystemTime) -> io::Result<bool> {
    let contents = match std::fs::read(path).map(Zeroizing::new) {
        Ok(contents) => contents,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    let mut file = read_key_file(&contents).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if file.unavailable_since.is_some() {
        return Ok(false);
    }
    file.unavailable_since =
        Some(file_time(since).ok_or_else(|| io::Error::other("the clock is beyond year 9999"))?);
    replace_atomically(path, &key_file_bytes(&file), Some(0o600))?;
    Ok(true)
}

/// Replaces the file at `target` with `contents`: a temporary file in the same
/// directory, given `mode` or else the original's permissions (and owner,
/// where allowed), flushed to disk, then renamed over the original. Readers
/// see the old file or the new one, never a mix.
pub(crate) fn replace_atomically(target: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // NamedTempFile creates the file with mode 0600: right for a new key file.
    let mut temp = NamedTempFile::new_in(&dir)?;
    temp.write_all(contents)?;
    if let Some(mode) = mode {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
    } else if let Ok(metadata) = std::fs::metadata(target) {
        temp.as_file().set_permissions(metadata.permissions())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Only root may give a file away; others keep their own ownership.
            let _ = std::os::unix::fs::chown(temp.path(), Some(metadata.uid()), Some(metadata.gid()));
        }
    }
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|e| e.error)?;
    // Make the rename itself durable; not every platform can sync a directory.
    if let Ok(dir) = std::fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
