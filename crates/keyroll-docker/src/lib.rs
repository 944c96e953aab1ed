//! keyroll provider for Docker secrets (and other secrets mounted as files).
//!
//! URI: `docker://NAME[?root=/path][&fallbacks=OLD,OLDER]`. The secret is read
//! from `/run/secrets/NAME`; the directory is `?root=` if given, else the
//! `KEYROLL_SECRETS_DIR` environment variable, else `/run/secrets`.
//!
//! # Fallbacks
//!
//! Docker secrets are immutable: a rotation is a new secret plus a service
//! update. The old key must keep verifying for a while, and there are two
//! ways to hand it over, usable together:
//!
//! 1. **Several lines in one secret**, in the same plain-text format as
//!    [`keyroll_file`]: the first key signs, further lines are fallbacks,
//!    blank lines and `#` comments are skipped. A secret starting with `{` is
//!    read as a JSON key set instead, with ids, times and states.
//!
//!    ```text
//!    printf '%s\n%s\n' "$NEW_KEY" "$OLD_KEY" | docker secret create app_key_v2 -
//!    docker service update --secret-rm app_key_v1 \
//!        --secret-add source=app_key_v2,target=app_key myapp
//!    ```
//!    with `docker://app_key`.
//!
//! 2. **Further secrets named in `fallbacks`**, whose keys follow the main
//!    secret's, in the order given:
//!
//!    ```text
//!    docker service update --secret-rm app_key_v1 \
//!        --secret-add source=app_key_v2,target=app_key \
//!        --secret-add source=app_key_v1,target=app_key_previous myapp
//!    ```
//!    with `docker://app_key?fallbacks=app_key_previous`. A fallback secret
//!    that is named but missing is an error (the refresher keeps the last good
//!    keys and reports itself degraded), so a typo does not silently drop the
//!    old key.
//!
//! The secrets' directory is watched like a key file (Kubernetes updates
//! mounted secrets in place with a `..data` symlink swap), so changes apply
//! within milliseconds; polling stays as a backstop.
//!
//! # Fleets
//!
//! Docker secrets are local to each container ([`Reach::Local`]: a new key
//! signs at once). A Kubernetes secret volume (detected by its `..data`
//! symlink) is shared by a fleet and updated on each node at a different
//! moment, so it counts as [`Reach::Shared`] with the kubelet's propagation
//! ([`keyroll_file::KUBERNETES_PROPAGATION`]) added to the activation delay;
//! `?reach=shared|local` (or [`DockerProvider::with_reach`]) overrides the
//! detection. See [`keyroll_file`] for how a fleet publishes keys.
//!
//! ```
//! use keyroll_core::{FromSource, KeyProvider, KeySource};
//! use keyroll_docker::DockerProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secrets = tempfile::tempdir()?;
//! std::fs::write(secrets.path().join("app_key"), "new-key-0123456789abcdefghijklmnopqrstuvwxyz\n")?;
//! std::fs::write(secrets.path().join("app_key_previous"), "old-key-0123456789abcdefghijklmnopqrstuvwxyz\n")?;
//! let uri = format!("docker://app_key?root={}&fallbacks=app_key_previous", secrets.path().display());
//! let provider = DockerProvider::from_uri(&uri)?;
//! let versions = provider.fetch().await?;
//! assert_eq!(versions.len(), 2);
//! assert_eq!(versions[0].material.expose_secret(), b"new-key-0123456789abcdefghijklmnopqrstuvwxyz");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyroll_core::{
    Capabilities, ChangeWatch, FromSource, KeyMaterial, KeyProvider, KeySource, KeyVersion, ProviderError,
    ProviderErrorKind, Published, Reach, async_trait,
};
use keyroll_file::FileProvider;

/// Where Docker mounts secrets inside a container.
pub const DEFAULT_SECRETS_DIR: &str = "/run/secrets";

/// The environment variable that overrides [`DEFAULT_SECRETS_DIR`].
pub const SECRETS_DIR_VAR: &str = "KEYROLL_SECRETS_DIR";

/// Reads a key (and its fallbacks) from Docker secrets.
///
/// ```
/// use keyroll_docker::DockerProvider;
///
/// let provider = DockerProvider::new("app_key")?
///     .with_root("/run/secrets")
///     .with_fallbacks(["app_key_previous"])?;
/// assert_eq!(provider.path(), std::path::Path::new("/run/secrets/app_key"));
/// # Ok::<(), keyroll_core::ProviderError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerProvider {
    name: String,
    fallbacks: Vec<String>,
    root: PathBuf,
    root_given: bool,
    reach: Option<Reach>,
}

impl DockerProvider {
    /// Reads secret `name` from `$KEYROLL_SECRETS_DIR` or `/run/secrets`.
    pub fn new(name: impl Into<String>) -> Result<Self, ProviderError> {
        let name = checked_name(name.into())?;
        let root = match std::env::var_os(SECRETS_DIR_VAR) {
            Some(dir) if !dir.is_empty() => {
                let dir = PathBuf::from(dir);
                if !dir.is_absolute() {
                    return Err(ProviderError::config(format!(
                        "{SECRETS_DIR_VAR}={} is not an absolute path",
                        dir.display()
                    )));
                }
                dir
            }
            _ => PathBuf::from(DEFAULT_SECRETS_DIR),
        };
        Ok(Self {
            name,
            fallbacks: Vec::new(),
            root,
            root_given: false,
            reach: None,
        })
    }

    /// Reads secrets from `root` instead.
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self.root_given = true;
        self
    }

    /// Declares who reads these secrets (see
    /// [`FileProvider::with_reach`]): without it, [`Reach::Shared`] on a
    /// Kubernetes volume (detected by its `..data` symlink), else
    /// [`Reach::Local`].
    pub fn with_reach(mut self, reach: Reach) -> Self {
        self.reach = Some(reach);
        self
    }

    /// Adds secrets whose keys follow the main secret's as fallbacks, in order.
    ///
    /// # Errors
    /// [`Config`](keyroll_core::ProviderErrorKind::Config) for a name that is
    /// not a secret name, or that holds a comma or starts or ends with white
    /// space (the URI's `fallbacks=A,B` list could not say it).
    pub fn with_fallbacks<I>(mut self, names: I) -> Result<Self, ProviderError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        for name in names {
            let name = checked_name(name.into())?;
            if name.contains(',') || name.trim() != name {
                return Err(ProviderError::config(format!(
                    "`{name}`: a fallback secret name cannot hold a comma or start or end with white space"
                )));
            }
            self.fallbacks.push(name);
        }
        Ok(self)
    }

    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the fallback secrets.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// The directory secrets are read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The main secret's file.
    pub fn path(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    fn secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.fallbacks.iter().map(String::as_str))
    }
}

impl FromSource for DockerProvider {
    const SCHEME: &'static str = "docker";

    /// From `docker://NAME[?root=/path][&fallbacks=A,B][&reach=shared|local]`.
    fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        source.expect_scheme(Self::SCHEME)?;
        source.expect_params(&["root", "fallbacks", "reach"])?;
        let reach = keyroll_file::reach_param(source)?;
        if !source.path().is_empty() && source.path() != "/" {
            return Err(ProviderError::config(format!(
                "`{source}`: docker:// takes a secret name only, such as docker://app_key; set the directory with ?root=/path"
            )));
        }
        let mut provider = Self::new(source.authority())?;
        provider.reach = reach;
        if let Some(root) = source.param("root") {
            if !Path::new(root).is_absolute() {
                return Err(ProviderError::config(format!(
                    "`{source}`: root must be an absolute path"
                )));
            }
            provider = provider.with_root(root);
        }
        if let Some(fallbacks) = source.param("fallbacks") {
            provider =
                provider.with_fallbacks(fallbacks.split(',').map(str::trim).filter(|n| !n.is_empty()))?;
        }
        Ok(provider)
    }
}

#[async_trait]
impl KeyProvider for DockerProvider {
    async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        let mut versions: Vec<KeyVersion> = Vec::new();
        for name in self.secrets() {
            let path = self.root.join(name);
            let found = FileProvider::new(&path).fetch().await.map_err(|error| {
                if error.kind() == ProviderErrorKind::NotFound {
                    ProviderError::not_found(format!(
                        "Docker secret `{name}` not found at {}; grant it to the service (`secrets:` in the compose file, `docker service update --secret-add`) or point ?root= or {SECRETS_DIR_VAR} at the secrets directory",
                        path.display()
                    ))
                    .with_source(error)
                } else {
                    error
                }
            })?;
            for version in found {
                // A key handed over both ways during a rotation counts once.
                if !versions.iter().any(|v| v.id == version.id) {
                    versions.push(version);
                }
            }
        }
        Ok(versions)
    }

    fn watch(&self) -> Result<Option<ChangeWatch>, ProviderError> {
        let paths: Vec<PathBuf> = self.secrets().map(|name| self.root.join(name)).collect();
        keyroll_file::watch_files(paths.iter().map(PathBuf::as_path)).map(Some)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::READ_ONLY.with_push()
    }

    fn reach(&self) -> Reach {
        keyroll_file::detect_reach(self.reach, &self.root)
    }

    fn propagation_delay(&self) -> Duration {
        keyroll_file::volume_propagation(&self.root)
    }

    /// `docker://NAME[?root=/path][&fallbacks=A,B][&reach=R]`; a root that is not
    /// UTF-8 is shown lossily, as `Path::display` does.
    fn source(&self) -> String {
        let root = self.root.to_string_lossy();
        let fallbacks = self.fallbacks.join(",");
        let mut params = Vec::new();
        if self.root_given {
            params.push(("root", root.as_ref()));
        }
        if !self.fallbacks.is_empty() {
            params.push(("fallbacks", fallbacks.as_str()));
        }
        if let Some(reach) = self.reach {
            params.push(("reach", keyroll_file::reach_name(reach)));
        }
        KeySource::format("docker", &self.name, "", &params)
    }

    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        let _ = material;
        Err(ProviderError::new(
            ProviderErrorKind::Unsupported,
            format!(
                "Docker secrets are immutable; create a new secret holding the new key and then the old one on separate lines, and swap it in with `docker service update --secret-rm ... --secret-add source=NEW,target={}`",
                self.name
            ),
        ))
    }
}

/// A secret name: one path component.
fn checked_name(name: String) -> Result<String, ProviderError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(ProviderError::config(format!(
            "`{name}` is not a Docker secret name; use the file name under /run/secrets, such as docker://app_key"
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_names_the_uri_list_cannot_say_are_refused() {
        for name in ["a,b", " a", "a\t", ","] {
            let error = DockerProvider::new("key")
                .unwrap()
                .with_fallbacks([name])
                .unwrap_err();
            assert_eq!(error.kind(), keyroll_core::ProviderErrorKind::Config, "{name:?}");
        }
    }
}
