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
//! let token = signer.sign("user=42");
//! let verified = signer.verify(&token)?;
//! if verified.needs_resign() {
//!     // verified with an older key: hand out signer.sign(&verified.value)
//! }
//! # Ok(()) }
//! ```
//!
//! Key sources are URIs ([`open`]); each provider is its own crate behind a
//! cargo feature of this one: `env`, `file`, `docker` (default), `vault`,
//! `aws`, `gcp`. Formats and integrations: the native [`Signer`] (always),
//! `django` and `fernet` (default), `axum` (rotating cookies for axum/tower).

#![forbid(unsafe_code)]

pub use keyroll_core::*;

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

/// Every scheme keyroll knows, with the cargo feature that provides it.
pub const SCHEMES: &[(&str, &str)] = &[
    ("env", "env"),
    ("file", "file"),
    ("docker", "docker"),
    ("vault", "vault"),
    ("aws-sm", "aws"),
    ("gcp-sm", "gcp"),
];

/// Opens the key source at `uri`: `env://SECRET_KEY`, `file:///path`,
/// `docker://name`, `vault://host:port/mount/path`, `aws-sm://secret-id`,
/// `gcp-sm://projects/p/secrets/s`.
///
/// An unknown scheme, or one whose feature is not compiled in, is a
/// [`ProviderErrorKind::Config`] error that names the feature to enable.
pub fn open(uri: &str) -> Result<Box<dyn KeyProvider>, ProviderError> {
    let source = KeySource::parse(uri)?;
    match source.scheme() {
        #[cfg(feature = "env")]
        "env" => Ok(Box::new(env::EnvProvider::from_source(&source)?)),
        #[cfg(feature = "file")]
        "file" => Ok(Box::new(file::FileProvider::from_source(&source)?)),
        #[cfg(feature = "docker")]
        "docker" => Ok(Box::new(docker::DockerProvider::from_source(&source)?)),
        #[cfg(feature = "vault")]
        "vault" => Ok(Box::new(vault::VaultProvider::from_source(&source)?)),
        #[cfg(feature = "aws")]
        "aws-sm" => Ok(Box::new(aws::AwsProvider::from_source(&source)?)),
        #[cfg(feature = "gcp")]
        "gcp-sm" => Ok(Box::new(gcp::GcpProvider::from_source(&source)?)),
        scheme => Err(not_available(scheme)),
    }
}

fn not_available(scheme: &str) -> ProviderError {
    match SCHEMES.iter().find(|(known, _)| *known == scheme) {
        Some((_, feature)) => ProviderError::config(format!(
            "key source scheme `{scheme}://` needs the `{feature}` feature of the keyroll crate, which this build does not include"
        )),
        None => ProviderError::config(format!(
            "unknown key source scheme `{scheme}://`; known schemes: {}",
            SCHEMES
                .iter()
                .map(|(s, _)| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
