//! keyroll provider for HashiCorp Vault and OpenBao: every version of a KV v2
//! secret is a key version.
//!
//! Write the key with `vault kv put secret/myapp key=…` (or `keyroll rotate
//! --keys vault://…`); each write is a new version. The provider reports the
//! newest versions, newest first, with Vault's version number as id and its
//! `created_time`, so every replica computes the same activation moment;
//! soft-deleted and destroyed versions are reported as
//! [`Disabled`](keyroll_core::KeyState::Disabled) and
//! [`Destroyed`](keyroll_core::KeyState::Destroyed) and never verify.
//! Change detection is cheap: one request per refresh. Most refreshes read
//! only the newest version (key and metadata in one answer), which is enough
//! to notice a new key; every [`DEFAULT_METADATA_EVERY`]th refresh (and
//! whenever the newest version is unexpected) reads the secret's metadata
//! instead, which shows versions deleted, destroyed or undeleted in the
//! store, and then reads only the versions this process does not hold yet.
//!
//! As a URI (`keyroll::open`, the CLI):
//!
//! | URI | meaning |
//! |---|---|
//! | `vault://HOST:PORT/MOUNT/PATH` | HTTPS, field `key`, token from `VAULT_TOKEN` |
//! | `vault:///MOUNT/PATH` | address from `VAULT_ADDR` |
//! | `?field=NAME` | the field holding the key |
//! | `?tls=false` | plain HTTP: only to this machine (loopback), with a warning |
//! | `?insecure_http=true` | allows plain HTTP to another host (the token crosses the network in clear) |
//! | `?namespace=NS` | `X-Vault-Namespace` (default `VAULT_NAMESPACE`) |
//! | `?ca_cert=PATH` | custom CA bundle (default `VAULT_CACERT`) |
//! | `?token_file=PATH` | token from a file (a Vault Agent sink), re-read when it changes |
//! | `?auth=approle` | AppRole login: `VAULT_ROLE_ID`/`VAULT_SECRET_ID`, or `role_id_file`/`secret_id_file` |
//! | `?auth=kubernetes&role=R` | Kubernetes login with the service-account JWT (`jwt_file` to override) |
//! | `?auth_mount=M` | where the auth method is mounted (default `approle`/`kubernetes`) |
//! | `?max_versions=N` | how many enabled versions to report (default: what the refresher's policy uses, `max_fallbacks + 2`) |
//! | `?metadata_every=N` | read the metadata at least every N refreshes (default 10; 1: every refresh) |
//! | `?timeout=SECONDS` | per-request timeout (default 5) |
//!
//! From code, use the builder:
//!
//! ```
//! use keyroll_vault::{Auth, Credential, VaultProvider};
//!
//! let provider = VaultProvider::builder()
//!     .address("https://vault.internal:8200")
//!     .secret("secret", "myapp/signing")
//!     .auth(Auth::app_role(Credential::env("VAULT_ROLE_ID"), Credential::file("/run/secrets/secret-id")))
//!     .build()?;
//! # let _ = provider;
//! # Ok::<(), keyroll_core::ProviderError>(())
//! ```
//!
//! Tokens are renewed before they expire; when renewal is refused or the
//! token reaches its maximum TTL, the provider logs in again (AppRole,
//! Kubernetes) or re-reads its token file. A `403` triggers one fresh login
//! before it is reported. Key material and credentials never appear in
//! `Debug`, errors or logs.

#![forbid(unsafe_code)]

mod auth;
mod builder;
mod client;
mod payload;
mod provider;
mod uri;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use auth::{Auth, Credential, SERVICE_ACCOUNT_TOKEN};
pub use builder::{DEFAULT_ATTEMPT_TIMEOUT, VaultProviderBuilder};
pub use provider::{DEFAULT_METADATA_EVERY, VaultProvider};
