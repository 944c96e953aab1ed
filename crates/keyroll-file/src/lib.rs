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
//!   keys verify. A disabled or destroyed entry may have no key (an `id` is
//!   then required): `keyroll agent` lists a version the store withdrew this
//!   way, and readers drop it from their key sets.
//! - `stage`: `pending`, `current` or `previous`, a store's stage label
//!   (AWS); where present, labels decide which key signs.
//!
//! At the top level, `"reach": "shared"` says the file is a copy of a store
//! that many processes read (what `keyroll agent` writes): readers then
//! stage activation as for the store itself, so every process on every host
//! switches keys at the same instant. Without it (or with `"local"`) a file
//! is local and new keys sign at once.
//!
//! `"unavailable_since": TIME` at the top level says the agent that writes
//! the file cannot read its store since then: reading the file then fails
//! ([`ParseError::StoreUnavailable`], an `Unavailable` provider error), so
//! its readers keep their last good keys, degraded, until their own
//! `fail_closed_after` closes their keyring, exactly as readers of the store
//! do. The agent's next good read clears it.
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
//! # Size and permissions
//!
//! At most [`MAX_KEY_FILE_BYTES`] (1 MiB) are read; a larger file is
//! refused as invalid, so a wrong path (`file:///dev/zero`) can neither
//! exhaust memory nor block a fetch. A key file readable by its group or by
//! others is used, with a warning (once per file) to restrict it (mode
//! `0400`, or `defaultMode: 0400` on a Kubernetes secret volume).
//!
//! # Fleets: Kubernetes volumes and `?reach=`
//!
//! A key file read by one process is [`Reach::Local`]: a new key signs at
//! once. A file on a Kubernetes secret, ConfigMap or projected volume
//! (detected by the `..data` symlink the kubelet swaps) is read by every pod
//! of a fleet, each kubelet updating its copy at a different moment, up to
//! about two minutes apart: it is [`Reach::Shared`], and the default
//! activation delay adds [`KUBERNETES_PROPAGATION`] (120 s) to the shared
//! stores' poll interval, jitter and clock-skew margin, so a new key only
//! verifies until every pod has it. `?reach=shared|local` (or
//! [`FileProvider::with_reach`]) overrides the detection, for instance for
//! files distributed to a fleet by other means.
//!
//! How a fleet must publish: a plain text file carries no creation time, so
//! each pod counts the activation delay from the moment it first saw a key,
//! and a pod that restarts counts afresh. That is safe (a key signs only
//! after every pod has had it for the delay) but pods switch at different
//! moments. Publish a **JSON key set with `created`** (what
//! `keyroll rotate` writes) so that every pod computes the same switch
//! moment from the file itself, or let the `keyroll agent` publish the file.
//! Keep the previous key in the file for the fallback window.
//!
//! # Rotating
//!
//! [`KeyProvider::rotate`] writes the new key as the first line of a plain
//! file (keeping every existing line) or as the first entry of a JSON key set
//! (id = fingerprint, `created` = now), through a temporary file in the same
//! directory renamed over the original, which keeps the file's permissions.
//! Only the JSON key set keeps when a key was created: a plain file does not,
//! so automatic rotation, which ages the newest key by its creation time,
//! needs a JSON key set.
//!
//! [`KeyProvider::publish_if`] publishes only while the file's newest key is
//! the one expected (its id: the fingerprint, or a JSON entry's `id`;
//! `None`: no file, or one without keys), so writers that read the same file
//! publish one key between them, the others getting
//! [`Conflict`](keyroll_core::ProviderErrorKind::Conflict). Both writes hold
//! the file's lock, `<file>.lock` created exclusively, from reading the file
//! to renaming the new one over it; a writer waits for another's lock (up to
//! [`LOCK_WAIT`]) and breaks one left by a crashed writer after
//! [`LOCK_STALE`] (10 s). The lock is only as good as exclusive create on
//! the file system (local file systems, NFS v3 and later), and only keyroll's
//! writers take it.
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
mod lock;
mod watch;
mod write;

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use keyroll_core::{
    Capabilities, ChangeWatch, FromSource, KeyMaterial, KeyProvider, KeySource, KeyVersion, ProviderError,
    Published, Reach, async_trait,
};
use zeroize::Zeroizing;

pub use format::{EntryProblem, Format, JsonProblem, KeyFileError, ParseError, key_file_json, parse};
pub use lock::{LOCK_STALE, LOCK_WAIT, LockError, lock_path};
pub use watch::watch_files;
pub use write::{mark_unavailable, write_if_changed};

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
    reach: Option<Reach>,
}

/// The largest key file read, in bytes (1 MiB). A key file holds a few keys;
/// anything larger (`file:///dev/zero`, a log file named by mistake) is
/// refused as invalid after reading at most this much, so a wrong path can
/// neither exhaust memory nor hold a blocking read that the fetch timeout
/// cannot stop.
pub const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// How long the kubelet may take to deliver an updated Secret to every pod
/// (120 s): it refreshes mounted secret volumes on its sync loop (default
/// `syncFrequency` 1 minute) from a cache that may itself be up to its TTL
/// (default 1 minute) old, so pods see a change up to about two minutes
/// apart. Added to the default activation delay of sources on a Kubernetes
/// secret or projected volume.
pub const KUBERNETES_PROPAGATION: Duration = Duration::from_secs(120);

/// True when `dir` is laid out as a Kubernetes secret, ConfigMap or
/// projected volume: a `..data` symlink to the current timestamped copy,
/// swapped by the kubelet on every update. Such a volume is shared by a
/// fleet and updated on each node at a different moment.
pub fn is_kubernetes_volume(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join("..data")).is_ok_and(|m| m.file_type().is_symlink())
}

/// The `?reach=shared|local` parameter of `file://` and `docker://` URIs.
///
/// # Errors
/// [`Config`](keyroll_core::ProviderErrorKind::Config) for another value.
pub fn reach_param(source: &KeySource) -> Result<Option<Reach>, ProviderError> {
    match source.param("reach") {
        None => Ok(None),
        Some("shared") => Ok(Some(Reach::Shared)),
        Some("local") => Ok(Some(Reach::Local)),
        Some(other) => Err(ProviderError::config(format!(
            "`{source}`: unknown reach `{other}`; use reach=shared (a fleet reads copies of this file) or reach=local"
        ))),
    }
}

/// The name of `reach` in URIs.
pub fn reach_name(reach: Reach) -> &'static str {
    match reach {
        Reach::Shared => "shared",
        _ => "local",
    }
}

/// The reach of files in `dir`: `given`, else shared on a Kubernetes volume,
/// else local.
pub fn detect_reach(given: Option<Reach>, dir: &Path) -> Reach {
    given.unwrap_or(if is_kubernetes_volume(dir) {
        Reach::Shared
    } else {
        Reach::Local
    })
}

/// The propagation delay of files in `dir`: [`KUBERNETES_PROPAGATION`] on a
/// Kubernetes volume, else none.
pub fn volume_propagation(dir: &Path) -> Duration {
    if is_kubernetes_volume(dir) {
        KUBERNETES_PROPAGATION
    } else {
        Duration::ZERO
    }
}

impl FileProvider {
    /// Reads `path`, detecting the format from its content.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: None,
            reach: None,
        }
    }

    /// Declares who reads this file: [`Reach::Shared`] when every replica of
    /// a fleet reads its own copy (a Kubernetes volume, which is detected
    /// without this, or a file distributed by other means), so a new key only
    /// verifies until every copy has it; [`Reach::Local`] for one process.
    pub fn with_reach(mut self, reach: Reach) -> Self {
        self.reach = Some(reach);
        self
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
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
            let message = format!("key file {}: {error}", self.path.display());
            match error {
                // The agent's store is out: fail as its readers do, retried.
                ParseError::StoreUnavailable { .. } => ProviderError::unavailable(message),
                _ => ProviderError::invalid(message),
            }
            .with_source(error)
        })
    }
}

impl FromSource for FileProvider {
    const SCHEME: &'static str = "file";

    /// From `file:///abs/path[?format=text|json][&reach=shared|local]`.
    fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        source.expect_scheme(Self::SCHEME)?;
        source.expect_params(&["format", "reach"])?;
        let reach = reach_param(source)?;
        if !matches!(source.authority(), "" | "localhost") || !source.path().starts_with('/') {
            return Err(ProviderError::config(format!(
                "`{source}`: file:// takes an absolute path after three slashes, such as file:///etc/myapp/keys"
            )));
        }
        let mut provider = Self::new(source.path());
        provider.reach = reach;
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
    async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
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

    fn capabilities(&self) -> Capabilities {
        Capabilities::READ_ONLY
            .with_push()
            .with_publish()
            .with_compare_and_set()
    }

    /// As given ([`with_reach`](FileProvider::with_reach), `?reach=`), else
    /// what a JSON key set declares (`"reach": "shared"`, as `keyroll agent`
    /// writes: copies of a shared store's keys, read by many processes, need
    /// staged activation), else [`Reach::Shared`] on a Kubernetes volume
    /// ([`is_kubernetes_volume`]), else [`Reach::Local`].
    fn reach(&self) -> Reach {
        let declared = self.reach.or_else(|| {
            read_file(&self.path)
                .ok()
                .and_then(|contents| format::declared_reach(&contents))
        });
        detect_reach(declared, self.dir())
    }

    /// [`KUBERNETES_PROPAGATION`] on a Kubernetes volume, else zero.
    fn propagation_delay(&self) -> Duration {
        volume_propagation(self.dir())
    }

    /// `file:///abs/path[?format=F][&reach=R]`. A relative path is shown made absolute
    /// against the current directory (the file it reads); a path that is
    /// not UTF-8 is shown lossily, as `Path::display` does.
    fn source(&self) -> String {
        let path = match self.path.is_absolute() {
            true => self.path.clone(),
            false => std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone()),
        };
        let mut params = Vec::new();
        if let Some(format) = self.format {
            params.push(("format", format.name()));
        }
        if let Some(reach) = self.reach {
            params.push(("reach", reach_name(reach)));
        }
        KeySource::format("file", "", &path.to_string_lossy(), &params)
    }

    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        self.write(material, write::Only::Always).await
    }

    /// Publishes `material` as the newest key only while the file's newest
    /// key is `expected` (`None`: the file is absent or holds no key),
    /// checked and written under the file's lock ([`lock_path`]): see
    /// [Rotating](crate#rotating).
    async fn publish_if(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        self.write(material, write::Only::After(expected.map(str::to_owned)))
            .await
    }
}

impl FileProvider {
    async fn write(&self, material: &KeyMaterial, only: write::Only) -> Result<Published, ProviderError> {
        let provider = self.clone();
        let material = material.clone();
        tokio::task::spawn_blocking(move || write::prepend(&provider.path, provider.format, &material, &only))
            .await
            .map_err(|e| {
                ProviderError::unavailable(format!("writing the key file failed: {e}")).with_source(e)
            })?
    }
}

/// Reads the whole file, at most [`MAX_KEY_FILE_BYTES`], into a buffer that
/// is wiped when dropped, warning when others than its owner may read it.
pub(crate) fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    let file = std::fs::File::open(path).map_err(|error| io_error(path, "read", error))?;
    if let Ok(metadata) = file.metadata() {
        warn_if_exposed(path, &metadata);
    }
    let mut contents = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(|error| io_error(path, "read", error))?;
    if contents.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(ProviderError::invalid(format!(
            "{} is larger than {MAX_KEY_FILE_BYTES} bytes, which no key file is; point file:// at the key file itself",
            path.display()
        )));
    }
    Ok(contents)
}

/// Warns once per path (per process) when a key file is readable by its
/// group or by others.
#[cfg(unix)]
fn warn_if_exposed(path: &Path, metadata: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    static WARNED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let mode = metadata.permissions().mode();
    if metadata.is_file() && mode & 0o044 != 0 {
        let mut warned = WARNED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if warned.insert(path.to_path_buf()) {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:04o}", mode & 0o7777),
                "the key file is readable by group or others; restrict it to the service's user (chmod 0400, or `defaultMode: 0400` on a Kubernetes secret volume)"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_: &Path, _: &std::fs::Metadata) {}

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
        FileProvider::from_uri(uri).unwrap()
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
