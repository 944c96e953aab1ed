//! An in-memory store with compare-and-set, disable and creation times:
//! automatic rotation's rules tested at memory speed, many refreshers
//! sharing one store as replicas share a secret store. The real stores'
//! own compare-and-set is tested against their servers.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use keyroll_core::{
    Capabilities, KeyMaterial, KeyProvider, KeyState, KeyVersion, ProviderError, ProviderErrorKind,
    Published, Reach, async_trait,
};

/// One store; clones are providers of the same store (replicas).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Newest first.
    versions: Vec<KeyVersion>,
    next_id: u64,
    /// Refuse every write with this kind (a read-only token).
    refuse_writes: Option<ProviderErrorKind>,
    /// Pretend the store keeps no creation times.
    timeless: bool,
    /// Declare no compare-and-set.
    no_compare_and_set: bool,
    disabled: Vec<String>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a version created `age` ago; its id.
    pub fn add(&self, material: &str, age: Duration) -> String {
        let mut inner = self.lock();
        inner.push(KeyMaterial::from(material), SystemTime::now() - age)
    }

    /// Every version, newest first.
    pub fn versions(&self) -> Vec<KeyVersion> {
        self.lock().versions.clone()
    }

    /// The ids disabled so far, in order (a second disable of one id counts
    /// again: it shows writers that race).
    pub fn disabled(&self) -> Vec<String> {
        self.lock().disabled.clone()
    }

    /// Refuses every write with `kind` from now on (`None`: accept again).
    pub fn refuse_writes(&self, kind: Option<ProviderErrorKind>) {
        self.lock().refuse_writes = kind;
    }

    /// Declares no compare-and-set from now on (as env and Docker stores).
    pub fn without_compare_and_set(self) -> Self {
        self.lock().no_compare_and_set = true;
        self
    }

    /// Reports no creation times from now on.
    pub fn forget_times(&self) {
        self.lock().timeless = true;
    }
}

impl Inner {
    fn push(&mut self, material: KeyMaterial, created: SystemTime) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.versions
            .insert(0, KeyVersion::new(id.clone(), material).with_created(created));
        id
    }

    fn refused(&self) -> Result<(), ProviderError> {
        match self.refuse_writes {
            Some(kind) => Err(ProviderError::new(kind, "memory store: writes are refused")),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl KeyProvider for MemoryStore {
    async fn fetch_newest(&self, versions: usize) -> Result<Vec<KeyVersion>, ProviderError> {
        let inner = self.lock();
        if inner.versions.is_empty() {
            return Err(ProviderError::new(
                ProviderErrorKind::NotFound,
                "memory store: no secret yet",
            ));
        }
        let mut listed: Vec<KeyVersion> = inner
            .versions
            .iter()
            .filter(|version| version.state == KeyState::Enabled)
            .take(versions)
            .cloned()
            .collect();
        if inner.timeless {
            for version in &mut listed {
                version.created = None;
            }
        }
        Ok(listed)
    }

    fn reach(&self) -> Reach {
        Reach::Shared
    }

    fn source(&self) -> String {
        "memory://store".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        let capabilities = Capabilities::READ_ONLY.with_publish().with_disable();
        if self.lock().no_compare_and_set {
            capabilities
        } else {
            capabilities.with_compare_and_set()
        }
    }

    async fn rotate(&self, material: &KeyMaterial) -> Result<Published, ProviderError> {
        let mut inner = self.lock();
        inner.refused()?;
        let now = SystemTime::now();
        Ok(Published::new(inner.push(material.clone(), now), Some(now)))
    }

    async fn publish_if(
        &self,
        material: &KeyMaterial,
        expected: Option<&str>,
    ) -> Result<Published, ProviderError> {
        let mut inner = self.lock();
        inner.refused()?;
        if inner.versions.first().map(|version| version.id.as_str()) != expected {
            return Err(ProviderError::new(
                ProviderErrorKind::Conflict,
                "memory store: the newest version changed",
            ));
        }
        let now = SystemTime::now();
        Ok(Published::new(inner.push(material.clone(), now), Some(now)))
    }

    async fn disable(&self, id: &str) -> Result<(), ProviderError> {
        let mut inner = self.lock();
        inner.refused()?;
        let Some(version) = inner.versions.iter_mut().find(|version| version.id == id) else {
            return Err(ProviderError::new(
                ProviderErrorKind::NotFound,
                format!("no version {id}"),
            ));
        };
        version.state = KeyState::Disabled;
        inner.disabled.push(id.to_owned());
        Ok(())
    }
}
