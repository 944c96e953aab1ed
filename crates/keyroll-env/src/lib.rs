//! keyroll provider for keys in environment variables.
//!
//! By default it reads Django's names: `SECRET_KEY` holds the key that signs,
//! `SECRET_KEY_FALLBACKS` older keys that still verify, separated by commas
//! or whitespace, newest first. As URI: `env://SECRET_KEY` (fallbacks from
//! `SECRET_KEY_FALLBACKS`), `env://APP_KEY` (fallbacks from
//! `APP_KEY_FALLBACKS`), or `env://APP_KEY?fallbacks=OLD_APP_KEYS`.
//!
//! A process's environment does not change while it runs, so keys from here
//! rotate with a restart; the policy still applies fallback windows.

#![forbid(unsafe_code)]

use keyroll_core::{FromSource, KeyProvider, KeySource, KeyVersion, ProviderError, Reach, async_trait};

/// Reads a key and its fallbacks from two environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProvider {
    key_var: String,
    fallbacks_var: String,
}

impl Default for EnvProvider {
    fn default() -> Self {
        Self::new("SECRET_KEY")
    }
}

impl EnvProvider {
    /// Reads the key from `key_var` and fallbacks from `{key_var}_FALLBACKS`.
    pub fn new(key_var: impl Into<String>) -> Self {
        let key_var = key_var.into();
        let fallbacks_var = format!("{key_var}_FALLBACKS");
        Self {
            key_var,
            fallbacks_var,
        }
    }

    /// Reads fallbacks from `var` instead.
    pub fn with_fallbacks_var(mut self, var: impl Into<String>) -> Self {
        self.fallbacks_var = var.into();
        self
    }
}

impl FromSource for EnvProvider {
    const SCHEME: &'static str = "env";

    /// From `env://NAME[?fallbacks=VAR]`; `env://` alone means `SECRET_KEY`.
    fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
        source.expect_scheme(Self::SCHEME)?;
        source.expect_params(&["fallbacks"])?;
        if !source.path().is_empty() && source.path() != "/" {
            return Err(ProviderError::config(format!(
                "`{source}`: env:// takes a variable name only, such as env://SECRET_KEY"
            )));
        }
        let name = match source.authority() {
            "" => "SECRET_KEY",
            name => name,
        };
        let provider = Self::new(name);
        Ok(match source.param("fallbacks") {
            Some(var) => provider.with_fallbacks_var(var),
            None => provider,
        })
    }
}

#[async_trait]
impl KeyProvider for EnvProvider {
    async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        let key = match std::env::var(&self.key_var) {
            Ok(key) => key,
            Err(std::env::VarError::NotPresent) => {
                return Err(ProviderError::not_found(format!(
                    "environment variable {} is not set",
                    self.key_var
                )));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ProviderError::invalid(format!(
                    "environment variable {} is not valid UTF-8",
                    self.key_var
                )));
            }
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ProviderError::invalid(format!(
                "environment variable {} is empty",
                self.key_var
            )));
        }
        let fallbacks = std::env::var(&self.fallbacks_var).unwrap_or_default();
        Ok(std::iter::once(key)
            .chain(fallbacks.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|k| !k.is_empty())
            .map(KeyVersion::from_material)
            .collect())
    }

    /// `env://NAME`, with `?fallbacks=VAR` when the fallbacks come from
    /// another variable than `NAME_FALLBACKS`: the URI that reads the same
    /// variables.
    /// Environment variables are read by this process alone.
    fn reach(&self) -> Reach {
        Reach::Local
    }

    fn source(&self) -> String {
        let fallbacks = [("fallbacks", self.fallbacks_var.as_str())];
        let params = match self.fallbacks_var.strip_suffix("_FALLBACKS") {
            Some(key_var) if key_var == self.key_var => &[][..],
            _ => &fallbacks[..],
        };
        KeySource::format("env", &self.key_var, "", params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_uri(uri: &str) -> EnvProvider {
        EnvProvider::from_uri(uri).unwrap()
    }

    #[test]
    fn source_is_the_uri_as_people_write_it() {
        assert_eq!(EnvProvider::default().source(), "env://SECRET_KEY");
        assert_eq!(from_uri("env://APP_KEY").source(), "env://APP_KEY");
        assert_eq!(from_uri("env://").source(), "env://SECRET_KEY");
        assert_eq!(
            from_uri("env://APP_KEY?fallbacks=OLD_APP_KEYS").source(),
            "env://APP_KEY?fallbacks=OLD_APP_KEYS"
        );
    }
}
