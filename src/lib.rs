//! Zero-downtime secret-key rotation for Rust services.
//!
//! Build a keyring once at start-up; keys rotate in the store; every replica
//! picks them up without a restart and no user is logged out.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let refresher = keyroll::Refresher::builder(keyroll::open("file:///etc/myapp/keys")?)
//!     .start()
//!     .await?;
//! let signer = keyroll::Signer::new(refresher.keyring().clone()).with_salt("sessions");
//! let token = signer.sign("user=42")?; // refused once the keyring has failed closed
//! let verified = signer.verify(&token)?;
//! if verified.needs_resign() {
//!     // verified with an older key: hand out signer.sign(&verified.value)
//! }
//! # Ok(()) }
//! ```
//!
//! Key sources are URIs ([`open`]); each provider is its own crate behind a
//! cargo feature of this one, listed in [`SCHEMES`] (`env`, `file` and
//! `docker` are default features). Formats and integrations: the native [`Signer`] (always),
//! `django` and `fernet` (default), `axum` (rotating cookies for axum/tower).

#![forbid(unsafe_code)]

// The service author's surface: start a refresher on a key source, sign and
// verify, read its status and key usage. Everything a provider or a format
// is built from lives in [`raw`].
#[cfg(feature = "metrics")]
pub use keyroll_core::metrics;
pub use keyroll_core::metrics_page;
pub use keyroll_core::options;
pub use keyroll_core::rotation;
pub use keyroll_core::{
    CLOCK_SKEW_MARGIN, Capabilities, Closed, DEFAULT_FALLBACK_WINDOW, DEFAULT_INTERVAL,
    DEFAULT_MAX_FALLBACKS, FallbackUsage, Format, Health, KeyEntry, KeyMaterial, KeyProvider, KeySet,
    KeySetError, KeySource, KeyStrength, Keyring, Policy, PolicyError, ProviderError, ProviderErrorKind,
    Reach, RefreshError, Refresher, RefresherBuilder, Role, RotationStatus, SignError, Signer, StartError,
    StartFailure, Status, UsageHistory, UsageWindow, Verified, VerifiedBy, VerifyError, Weakness,
};

/// The `tracing` filter the `keyroll` command and the Node package log with
/// unless `KEYROLL_LOG` says otherwise: warnings and errors (a refused key
/// set, a store that stopped answering, failing closed). The Vault client's
/// own error lines (rustify, vaultrs) are off: they repeat, raw, the failure
/// keyroll then reports with what to do.
pub const DEFAULT_LOG_FILTER: &str = "warn,rustify=off,vaultrs=off";

pub mod ops;

#[cfg(feature = "metrics-page")]
mod page;
#[cfg(feature = "metrics-page")]
pub use page::{MetricsPage, MetricsPageError, SCRAPE_TIMEOUT};

/// For those who write a key provider or a token format, not for services:
/// the provider contract ([`KeyProvider`], [`FromSource`](raw::FromSource)),
/// what a store reports
/// ([`KeyVersion`](raw::KeyVersion)), the shared parts of remote stores
/// ([`remote`](raw::remote)) and the per-generation caches formats verify
/// with ([`DerivedCache`](raw::DerivedCache),
/// [`RoleSnapshot`](raw::RoleSnapshot)). As OpenDAL keeps its `raw` module,
/// this one may change more often than the rest of the crate.
///
/// A provider needs nothing else:
///
/// ```
/// use keyroll::raw::{FromSource, KeyVersion, async_trait};
/// use keyroll::{KeyProvider, KeySource, ProviderError, Reach};
///
/// /// One key from the command line's environment, re-read on every fetch.
/// #[derive(Debug)]
/// struct Argv(String);
///
/// #[async_trait]
/// impl KeyProvider for Argv {
///     async fn fetch_newest(&self, _versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
///         Ok(vec![KeyVersion::new("1", self.0.as_bytes().to_vec())])
///     }
///     fn reach(&self) -> Reach {
///         Reach::Local
///     }
/// }
///
/// impl FromSource for Argv {
///     const SCHEME: &'static str = "argv";
///     fn from_source(source: &KeySource) -> Result<Self, ProviderError> {
///         source.expect_scheme(Self::SCHEME)?;
///         Ok(Argv(source.path().to_owned()))
///     }
/// }
///
/// let provider = Argv::from_uri("argv://a-long-enough-test-key-0123456789abcdef")?;
/// assert_eq!(provider.reach(), Reach::Local);
/// # Ok::<(), ProviderError>(())
/// ```
pub mod raw {
    pub use keyroll_core::kit;
    pub use keyroll_core::remote;
    pub use keyroll_core::{
        ChangeWatch, Deadline, Derived, DerivedCache, DerivedRef, FirstSeen, FromSource, KeyState,
        KeyVersion, ParamSetter, Published, RoleSnapshot, RolesNow, Stage, VersionId, async_trait,
        record_reissue, record_rejection,
    };
}

#[cfg(feature = "aws")]
pub use keyroll_aws as aws;
#[cfg(feature = "axum")]
pub use keyroll_axum as axum;
#[cfg(feature = "django")]
pub use keyroll_django as django;
#[cfg(feature = "docker")]
pub use keyroll_docker as docker;
#[cfg(feature = "env")]
pub use keyroll_env as env;
#[cfg(feature = "fernet")]
pub use keyroll_fernet as fernet;
#[cfg(feature = "file")]
pub use keyroll_file as file;
#[cfg(feature = "flask")]
pub use keyroll_flask as flask;
#[cfg(feature = "gcp")]
pub use keyroll_gcp as gcp;
#[cfg(feature = "jwt")]
pub use keyroll_jwt as jwt;
#[cfg(feature = "vault")]
pub use keyroll_vault as vault;

/// The table of stores: one line per provider crate, read by [`open`],
/// [`SCHEMES`], the CLI's help and the tests. Adding a store is its crate,
/// one line here and one cargo feature (see CONTRIBUTING.md).
///
/// Each line: the cargo feature, the URI scheme, the provider type (which
/// implements [`FromSource`] with that scheme, checked when it compiles) and
/// an example URI for help texts.
macro_rules! stores {
    ($($feature:literal => $scheme:literal, $krate:ident :: $provider:ident, $example:literal;)*) => {
        /// Every store keyroll knows, in the order of the table, whether or
        /// not this build includes it.
        pub const SCHEMES: &[Scheme] = &[$(
            Scheme {
                name: $scheme,
                feature: $feature,
                provider_crate: stringify!($krate),
                example: $example,
                enabled: cfg!(feature = $feature),
            },
        )*];

        $(
            #[cfg(feature = $feature)]
            const _: () = assert!(
                same(<$krate::$provider as keyroll_core::FromSource>::SCHEME, $scheme),
                concat!(stringify!($provider), "::SCHEME is not `", $scheme, "` as the table of stores says"),
            );
        )*

        /// Opens `source` with the provider of its scheme.
        fn open_source(source: &KeySource) -> Result<Box<dyn KeyProvider>, ProviderError> {
            $(
                #[cfg(feature = $feature)]
                if source.scheme() == $scheme {
                    return Ok(Box::new(<$krate::$provider as keyroll_core::FromSource>::from_source(source)?));
                }
            )*
            Err(not_available(source.scheme()))
        }
    };
}

stores! {
    "env" => "env", keyroll_env::EnvProvider, "env://SECRET_KEY";
    "file" => "file", keyroll_file::FileProvider, "file:///etc/myapp/keys";
    "docker" => "docker", keyroll_docker::DockerProvider, "docker://app_key";
    "vault" => "vault", keyroll_vault::VaultProvider, "vault://vault:8200/secret/myapp";
    "aws" => "aws-sm", keyroll_aws::AwsProvider, "aws-sm://myapp/signing-key";
    "gcp" => "gcp-sm", keyroll_gcp::GcpProvider, "gcp-sm://projects/my-project/secrets/app-key";
}

/// A store keyroll can open by URI: one line of the table of stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scheme {
    /// The URI scheme, such as `aws-sm`.
    pub name: &'static str,
    /// The cargo feature of this crate that includes the store.
    pub feature: &'static str,
    /// The provider crate, as Rust names it (`keyroll_aws`).
    pub provider_crate: &'static str,
    /// An example URI, for help texts.
    pub example: &'static str,
    /// Whether this build includes the store.
    pub enabled: bool,
}

/// Whether two strings are equal, at compile time.
#[allow(
    dead_code,
    reason = "used by the checks of the stores compiled in, which may be none"
)]
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Opens the key source at `uri` with the provider of its scheme, one of
/// [`SCHEMES`], such as `file:///etc/myapp/keys`.
///
/// An unknown scheme, or one whose feature is not compiled in, is a
/// [`ProviderErrorKind::Config`] error that names the feature to enable.
pub fn open(uri: &str) -> Result<Box<dyn KeyProvider>, ProviderError> {
    open_source(&KeySource::parse(uri)?)
}

fn not_available(scheme: &str) -> ProviderError {
    match SCHEMES.iter().find(|known| known.name == scheme) {
        Some(known) => ProviderError::config(format!(
            "key source scheme `{scheme}://` needs the `{}` feature of the keyroll crate, which this build does not include",
            known.feature
        )),
        None => ProviderError::config(format!(
            "unknown key source scheme `{scheme}://`; known schemes: {}",
            SCHEMES
                .iter()
                .map(|known| format!("{}://", known.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
