//! keyroll provider for keys in a file, watched for changes.
//!
//! URI: `file:///abs/path/to/keys`, optionally `?format=text` or
//! `?format=json`; without it the format is detected from the content (JSON
//! when the first non-whitespace character is `{`).
//!
//! # Plain text
//!
//! Django's model, one key per line: the first key signs, the others are
//! fallbacks that still verify, newest first. Whitespace around a key is
//! trimmed; blank lines and lines starting with `#` are skipped (so a key
//! cannot start with `#`). Version ids are the keys'
//! [fingerprints](keyroll_core::KeyMaterial::fingerprint).
//!
//! ```text
//! # signing key
//! pN9v0nq2H3d4sX1b8kq3LzY7tW5mR6cA0eJfU2iGoVhKxQyPTs
//! # fallbacks, newest first
//! 7bQe1xk9Zt2nLm4pRv8sYw3cJh6gFa5dUo0iKyNxMqWzEtHrBs
//! ```
//!
//! # JSON key set
//!
//! For explicit ids, timestamps and states. Entries are listed newest first;
//! every field but the key is optional:
//!
//! ```json
//! {"keys": [
//!   {"id": "2026-11", "key": "pN9v0nq2H3d4sX1b8kq3LzY7tW5mR6cA0eJfU2iGoVhKxQyPTs",
//!    "created": "2026-11-01T00:00:00Z", "activates": "2026-11-02T00:00:00Z"},
//!   {"id": "2026-10", "key_base64": "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=",
//!    "created": "2026-10-01T00:00:00Z", "expires": "2026-12-01T00:00:00Z", "state": "enabled"}
//! ]}
//! ```
//!
//! - `id`: the version id; defaults to the key's fingerprint.
//! - `key` (a text key) or `key_base64` (binary, standard or URL-safe
//!   alphabet): exactly one of them.
//! - `created`, `activates`, `expires`: RFC 3339 times. The policy signs with
//!   the newest key from `activates` (else from `created`), and stops
//!   accepting a key at `expires`.
//! - `state`: `enabled` (default), `disabled` or `destroyed`; only enabled
//!   keys verify.
//!
//! Unknown fields are an error, so a typo never silently changes behaviour.
//!
//! # Watching
//!
//! [`FileProvider::watch`](keyroll_core::KeyProvider::watch) watches the
//! file's directory with `notify`, so an atomic rename over the file, an
//! in-place editor save and the Kubernetes mounted-secret `..data` symlink
//! swap all refresh the keyring within milliseconds; the
//! [`Refresher`](keyroll_core::Refresher)'s polling stays on as a backstop.
//! A file that is half-written or invalid is an error naming the line (and,
//! for JSON, the column) but never the key text; the refresher then keeps the
//! last good keys and reports itself degraded until the file is fixed.
//!
//! # Rotating
//!
//! [`KeyProvider::rotate`] writes the new key as the first line of a plain
//! file (keeping every existing line) or as the first entry of a JSON key set
//! (id = fingerprint, `created` = now), through a temporary file in the same
//! directory renamed over the original, which keeps the file's permissions.
//!
//! ```
//! use keyroll_core::{KeyMaterial, KeyProvider};
//! use keyroll_file::FileProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("keys");
//! std::fs::write(&path, "# Django SECRET_KEY, then fallbacks\nold-key-0123456789abcdefghijklmnopqrstuvwxyz\n")?;
//! let provider = FileProvider::new(&path);
//! provider.rotate(&KeyMaterial::from("new-key-0123456789abcdefghijklmnopqrstuvwxyz")).await?;
//! let versions = provider.fetch().await?;
//! assert_eq!(versions[0].material.expose_secret(), b"new-key-0123456789abcdefghijklmnopqrstuvwxyz");
//! assert_eq!(versions.len(), 2);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod format;
mod watch;
mod write;

use std::io;
use std::path::{Path, PathBuf};

use keyroll_core::{
    ChangeWatch, FromSource, KeyMaterial, KeyProvider, KeySource, KeyVersion, ProviderError, Published,
    Reach, async_trait,
};
use zeroize::Zeroizing;

pub use format::{EntryProblem, Format, ParseError, parse};
pub use watch::watch_files;

/// Reads keys from a file in plain text or JSON key set format.
///
/// ```
/// use keyroll_file::{FileProvider, Format};
///
/// let provider = FileProvider::new("/etc/myapp/keys.json").with_format(Format::Json);
/// assert_eq!(provider.format(), Some(Format::Json));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProvider {
    path: PathBuf,
    format: Option<Format>,
}

impl FileProvider {
    /// Reads `path`, detecting the format from its content.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: None,
        }
    }

    /// Reads the file in `format` instead of detecting it.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format given, or `None` when it is detected from the content.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Reads and parses the file now, blocking: what
    /// [`fetch`](KeyProvider::fetch) does on a blocking thread.
    pub fn read(&self) -> Result<Vec<KeyVersion>, ProviderError> {
        let contents = read_file(&self.path)?;
        parse(&contents, self.format).map_err(|error| {
            ProviderError::invalid(format!("key file {}: {error}", self.path.display())).with_source(error)
        })
    }
}

impl FromSource for FileProvider {
    const SCHEME: &'static str = "file";

    /// From `file:///abs/path[?format=text|json]`.
    fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        source.expect_scheme(Self::SCHEME)?;
        source.expect_params(&["format"])?;
        if !matches!(source.authority(), "" | "localhost") || !source.path().starts_with('/') {
            return Err(ProviderError::config(format!(
                "`{source}`: file:// takes an absolute path after three slashes, such as file:///etc/myapp/keys"
            )));
        }
        let provider = Self::new(source.path());
        match source.param("format") {
            None => Ok(provider),
            Some(name) => match Format::from_name(name) {
                Some(format) => Ok(provider.with_format(format)),
                None => Err(ProviderError::config(format!(
                    "`{source}`: unknown format `{name}`; use format=text or format=json"
                ))),
            },
        }
    }
}

#[async_trait]
impl KeyProvider for FileProvider {
    async fn fetch(&self) -> Result<Vec<KeyVersion>, ProviderError> {
        let provider = self.clone();
        tokio::task::spawn_blocking(move || provider.read())
            .await
            .map_err(|e| {
                ProviderError::unavailable(format!("reading the key file failed: {e}")).with_source(e)
            })?
    }

    fn watch(&self) -> Result<Option<ChangeWatch>, ProviderError> {
        watch_files([self.path.as_path()]).map(Some)
    }

    /// `file:///abs/path[?format=F]`. A relative path is shown made absolute
    /// against the current directory (the file it reads); a path that is
    /// not UTF-8 is shown lossily, as `Path::display` does.
    /// A key file is read by the processes of this machine.
    fn reach(&self) -> Reach {
        Reach::Local
    }

    fn source(&self) -> String {
        let path = match self.path.is_absolute() {
            true => self.path.clone(),
            false => std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone()),
        };
        let format = self.format.map(|f| [("format", f.name())]);
        KeySource::format(
            "file",
            "",
            &path.to_string_lossy(),
            format.as_ref().map_or(&[], |f| &f[..]),
        )
    }

    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        let provider = self.clone();
        let material = material.clone();
        tokio::task::spawn_blocking(move || write::prepend(&provider.path, provider.format, &material))
            .await
            .map_err(|e| {
                ProviderError::unavailable(format!("writing the key file failed: {e}")).with_source(e)
            })?
    }
}

/// Reads the whole file into a buffer that is wiped when dropped.
fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|error| io_error(path, "read", error))
}

/// A provider error for an I/O failure on `path`, saying what to do.
fn io_error(path: &Path, action: &str, error: io::Error) -> ProviderError {
    let shown = path.display();
    match error.kind() {
        io::ErrorKind::NotFound => ProviderError::not_found(format!(
            "key file {shown} does not exist; create it with the signing key on the first line (`keyroll generate > {shown}`)"
        )),
        io::ErrorKind::PermissionDenied => ProviderError::permission_denied(format!(
            "cannot {action} key file {shown}: permission denied; give the service's user access to it (owner and mode 0400 or 0600)"
        )),
        io::ErrorKind::IsADirectory => ProviderError::config(format!(
            "{shown} is a directory; point file:// at the key file itself"
        )),
        _ => ProviderError::unavailable(format!("cannot {action} key file {shown}: {error}")),
    }
    .with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_uri(uri: &str) -> FileProvider {
        FileProvider::from_source(&KeySource::parse(uri).unwrap()).unwrap()
    }

    #[test]
    fn source_is_the_uri_as_people_write_it() {
        assert_eq!(
            FileProvider::new("/etc/keyroll/keys").source(),
            "file:///etc/keyroll/keys"
        );
        assert_eq!(
            from_uri("file:///etc/keyroll/keys.json?format=json").source(),
            "file:///etc/keyroll/keys.json?format=json"
        );
        assert_eq!(from_uri("file://localhost/etc/keys").source(), "file:///etc/keys");
    }

    #[test]
    fn a_relative_path_is_shown_absolute() {
        let provider = FileProvider::new("keys.json");
        let again = from_uri(&provider.source());
        assert_eq!(again.path(), std::env::current_dir().unwrap().join("keys.json"));
    }
}
