//! The core of keyroll: key model, rotation policy, lock-free keyring,
//! background refresher and native signer.
//!
//! A [`KeyProvider`] reports the versions a store holds; the [`Policy`] turns
//! them into a [`KeySet`] (one key signs, others verify, until when); a
//! [`Refresher`] keeps a [`Keyring`] current in the background; a [`Signer`]
//! signs and verifies with whatever the keyring holds at that instant.
//!
//! ```
//! use keyroll_core::{KeyMaterial, KeySet, Keyring, Signer};
//!
//! let keyring = Keyring::new(KeySet::single("v1", KeyMaterial::from("0123456789abcdefghijklmnopqrstuvwxyz")).unwrap());
//! let signer = Signer::new(keyring).with_salt("password-reset");
//! let token = signer.sign("user:42").expect("the keyring serves");
//! assert_eq!(signer.verify(&token).unwrap().value, "user:42");
//! ```

#![forbid(unsafe_code)]

mod history;
mod id;
pub mod keygen;
mod keyring;
mod keyset;
pub mod kit;
mod mac_text;
mod material;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod metrics_page;
pub mod native;
pub mod options;
mod policy;
mod provider;
mod refresher;
pub mod remote;
mod roles;
pub mod rotation;
mod source;
mod usage;
mod version;

pub use history::{FallbackUsage, UsageHistory, UsageWindow};
pub use id::VersionId;
pub use keyring::{Closed, Derived, DerivedCache, DerivedRef, Keyring};
pub use keyset::{KeyEntry, KeySet, KeySetError, Role};
pub use mac_text::{MAC_TEXT_LEN, MacText};
pub use material::KeyMaterial;
pub use native::{SignError, Signer, Verified, VerifiedBy, VerifyError};
pub use policy::{
    DEFAULT_FALLBACK_WINDOW, DEFAULT_MAX_FALLBACKS, FirstSeen, KeyStrength, Policy, PolicyError, Weakness,
};
pub use provider::{
    Capabilities, ChangeWatch, FromSource, KeyProvider, ProviderError, ProviderErrorKind, Published, Reach,
};
pub use refresher::{
    CLOCK_SKEW_MARGIN, DEFAULT_INTERVAL, Health, RefreshError, Refresher, RefresherBuilder, RotationStatus,
    StartError, StartFailure, Status,
};
pub use roles::{Deadline, RoleSnapshot, RolesNow, Verifying};
pub use source::{KeySource, ParamSetter};
pub use usage::{Format, record_reissue, record_rejection};
pub use version::{KeyState, KeyVersion, Stage};

/// Re-exported so providers implement [`KeyProvider`] with the same macro.
pub use async_trait::async_trait;
