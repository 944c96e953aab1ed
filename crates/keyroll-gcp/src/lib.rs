//! keyroll provider for Google Cloud Secret Manager.
//!
//! Every version of a secret is a key version: its number is the id, its
//! `createTime` the creation time, its state (`ENABLED`, `DISABLED`,
//! `DESTROYED`) the [`KeyState`](keyroll_core::KeyState). Versions are read
//! with `ListSecretVersions` (every page) and the payload of each enabled
//! version is fetched once with `AccessSecretVersion`, its `dataCrc32c`
//! checked (the client library does not), and kept while the version stays
//! enabled. A payload whose checksum does not match is refused: the fetch
//! fails with [`ProviderErrorKind::Invalid`](keyroll_core::ProviderErrorKind)
//! and the refresher keeps serving the last good keys.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use keyroll_core::{FromSource, Refresher};
//! use keyroll_gcp::GcpProvider;
//!
//! // Application Default Credentials, global endpoint.
//! let provider = GcpProvider::builder()
//!     .secret("projects/my-project/secrets/app-signing-key")
//!     .build()?;
//! let refresher = Refresher::builder(provider).start().await?;
//!
//! // Or from a URI, against a local server with anonymous credentials.
//! let local = GcpProvider::from_uri(
//!     "gcp-sm://projects/demo/secrets/app-key?endpoint=http://127.0.0.1:8085",
//! )?;
//! # let _ = (refresher, local);
//! # Ok(()) }
//! ```
//!
//! Credentials are Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
//! `gcloud auth application-default login`, or the metadata server); an
//! `http://` endpoint (a local test server) is spoken to anonymously. The
//! client makes at most [`DEFAULT_MAX_ATTEMPTS`] attempts, each bounded by
//! [`DEFAULT_ATTEMPT_TIMEOUT`] (and all of them by the two multiplied),
//! so an unreachable store is reported in seconds (the client's own default
//! policy takes up to a minute).
//!
//! # Publishing only over the version read
//!
//! `AddSecretVersion` takes no condition, so
//! [`publish_if`](keyroll_core::KeyProvider::publish_if) first claims the
//! next version in the secret's [`CLAIM`] annotation (`keyroll-claim`) with
//! an `UpdateSecret` under the secret's `etag`: of many writers that read the
//! same secret, one updates it, the others get
//! [`Conflict`](keyroll_core::ProviderErrorKind::Conflict) and write
//! nothing. A claim stops other writers for [`CLAIM_TTL`] (10 minutes), so a
//! writer that crashed between claim and add delays the next rotation by at
//! most that; the claimer adds its version only within half of it. This
//! needs `secretmanager.secrets.update` on the secret besides what rotating
//! needs (`roles/secretmanager.secretVersionManager` does not grant it: add
//! it with a custom role), and `secretmanager.secrets.create` on the project
//! to create a secret that does not exist yet.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod provider;

pub use builder::GcpProviderBuilder;
pub use provider::{
    CLAIM, CLAIM_TTL, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, GcpProvider, SCHEME, SecretName,
};
