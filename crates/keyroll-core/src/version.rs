//! What a provider reports: the versions of a secret, as the store holds them.

use std::time::SystemTime;

use crate::KeyMaterial;

/// Whether the store lets a version be used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// Switched off in the store but recoverable (Vault soft delete, GCP
    /// DISABLED, a JSON key file entry marked disabled). Never verifies.
    Disabled,
    /// Gone for good. Never verifies.
    Destroyed,
}

/// A stage label the store attaches to a version (AWS Secrets Manager style).
///
/// Where a store has labels they decide roles; where it has none the policy
/// works from the order and timestamps of the versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Published but not yet current: verifies, never signs (`AWSPENDING`).
    Pending,
    /// The version the store calls current (`AWSCURRENT`).
    Current,
    /// The version that was current before (`AWSPREVIOUS`).
    Previous,
}

/// One version of a secret as a provider reports it.
///
/// A provider only translates its store: it never decides which version signs.
/// That is the job of [`Policy`](crate::Policy).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyVersion {
    /// The store's id for this version (a Vault version number, an AWS version
    /// id) or, for stores without ids, the material's fingerprint.
    pub id: String,
    /// The secret bytes.
    pub material: KeyMaterial,
    /// When the store says the version was created, if it says.
    pub created: Option<SystemTime>,
    /// Whether the store allows it to be used.
    pub state: KeyState,
    /// The store's stage label, if the store has labels.
    pub stage: Option<Stage>,
    /// An explicit moment from which the version may sign (a JSON key file's
    /// `activates`). Overrides `created + activation_delay`.
    pub activates: Option<SystemTime>,
    /// An explicit moment after which the version must not verify any more
    /// (a JSON key file's `expires`).
    pub expires: Option<SystemTime>,
}

impl KeyVersion {
    /// An enabled version with only an id and material; add the rest with the
    /// `with_*` methods.
    pub fn new(id: impl Into<String>, material: impl Into<KeyMaterial>) -> Self {
        Self {
            id: id.into(),
            material: material.into(),
            created: None,
            state: KeyState::Enabled,
            stage: None,
            activates: None,
            expires: None,
        }
    }

    /// An enabled version whose id is the material's fingerprint, for stores
    /// that have no ids of their own.
    pub fn from_material(material: impl Into<KeyMaterial>) -> Self {
        let material = material.into();
        Self::new(material.fingerprint(), material)
    }

    /// Sets the creation time.
    pub fn with_created(mut self, created: SystemTime) -> Self {
        self.created = Some(created);
        self
    }

    /// Sets the state.
    pub fn with_state(mut self, state: KeyState) -> Self {
        self.state = state;
        self
    }

    /// Sets the stage label.
    pub fn with_stage(mut self, stage: Stage) -> Self {
        self.stage = Some(stage);
        self
    }

    /// Sets an explicit activation moment.
    pub fn with_activates(mut self, at: SystemTime) -> Self {
        self.activates = Some(at);
        self
    }

    /// Whether it may still verify at `now`: enabled and not past its
    /// explicit expiry (the policy's first rule).
    pub fn usable_at(&self, now: SystemTime) -> bool {
        self.state == KeyState::Enabled && self.expires.is_none_or(|at| at > now)
    }

    /// Sets an explicit expiry moment.
    pub fn with_expires(mut self, at: SystemTime) -> Self {
        self.expires = Some(at);
        self
    }
}
