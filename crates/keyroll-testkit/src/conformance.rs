//! The conformance suite every provider passes, in the style of
//! `object_store`'s `integration` module.
//!
//! A provider's tests implement [`TestStore`] for a store they control (an
//! environment variable, a temp file, a dev server) and call [`run`] with the
//! [`Capabilities`] the test knows of the store (what the provider can do it
//! declares itself: [`KeyProvider::capabilities`]); each check is also a public function, so
//! a test can run one alone. Every check publishes fresh random keys, so the
//! checks run in sequence on one store.
//!
//! ```no_run
//! use keyroll_core::{KeyProvider, async_trait};
//! use keyroll_testkit::conformance::{self, Capabilities, TestStore};
//!
//! /// A store under test: how to open a provider on it, and how to write to it.
//! #[derive(Debug)]
//! struct MyStore {
//!     open: fn() -> Box<dyn KeyProvider>,
//!     absent: fn() -> Box<dyn KeyProvider>,
//!     write: fn(&str),
//! }
//!
//! #[async_trait]
//! impl TestStore for MyStore {
//!     fn provider(&self) -> Box<dyn KeyProvider> {
//!         (self.open)()
//!     }
//!     fn missing(&self) -> Box<dyn KeyProvider> {
//!         (self.absent)()
//!     }
//!     async fn empty(&self) -> Box<dyn KeyProvider> {
//!         (self.write)("");
//!         (self.open)()
//!     }
//!     async fn publish(&self, material: &str) {
//!         (self.write)(material)
//!     }
//! }
//!
//! // `P` is the provider type, which opens from the URIs its `source()` shows.
//! # async fn test<P: keyroll_core::FromSource>(store: MyStore) {
//! conformance::run::<P>(&store, Capabilities::new()).await;
//! # }
//! ```

use std::fmt::Debug;
use std::time::{Duration, Instant, SystemTime};

use keyroll_core::{
    FromSource, KeyMaterial, KeyProvider, KeySource, KeyState, KeyStrength, KeyVersion, Policy,
    ProviderError, ProviderErrorKind, Reach, Refresher, Signer, VerifyError, async_trait,
};
use rand::Rng;
use rand::distr::Alphanumeric;

mod compare_and_set;
mod secrecy;

pub use compare_and_set::{publish_if_is_unsupported, publish_if_publishes_once_over_the_newest};
pub use secrecy::{assert_no_material, debug_output_never_contains_material, logs_never_contain_material};

/// How long a check waits for a change to show up before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Poll interval of the refreshers the checks start.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// What the test knows of its store, which the provider cannot declare for
/// every store of its kind: who reads it, whether this store's versions carry
/// creation times, whether the test can disable a version. What the provider
/// itself can do (publish, promote, disable, push) it declares
/// ([`KeyProvider::capabilities`]): [`run`] reads that, and
/// [`declared_capabilities_hold`] holds the provider to it. Checks that need
/// what the store lacks are skipped by [`run`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Capabilities {
    /// Who else reads the store: what [`KeyProvider::reach`] must say.
    pub reach: Reach,
    /// The store keeps a creation time per version and the provider reports it.
    pub created_times: bool,
    /// Versions can be disabled in the store ([`TestStore::disable`]).
    pub disable: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            reach: Reach::Local,
            created_times: false,
            disable: false,
        }
    }
}

impl Capabilities {
    /// A local store (read by this process alone), no optional capability.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store a fleet shares ([`Reach::Shared`]).
    pub fn shared(mut self) -> Self {
        self.reach = Reach::Shared;
        self
    }

    /// The provider reports creation times.
    pub fn with_created_times(mut self) -> Self {
        self.created_times = true;
        self
    }

    /// Versions can be disabled.
    pub fn with_disable(mut self) -> Self {
        self.disable = true;
        self
    }
}

/// A store under test, controlled by the test: it hands out providers reading
/// it and changes it the way an operator's rotation would.
#[async_trait]
pub trait TestStore: Send + Sync + Debug {
    /// A fresh provider reading this store.
    fn provider(&self) -> Box<dyn KeyProvider>;

    /// A provider of the same kind reading a secret (file, variable) that
    /// does not exist.
    fn missing(&self) -> Box<dyn KeyProvider>;

    /// A provider of the same kind reading a secret (file, variable) that the
    /// store holds but that holds no key: no version, or an empty value.
    async fn empty(&self) -> Box<dyn KeyProvider>;

    /// Makes `material` the newest version; older versions stay as after a rotation.
    async fn publish(&self, material: &str);

    /// Disables the version holding `material`; only called when
    /// [`Capabilities::disable`] is set. Returns whether the store could.
    async fn disable(&self, material: &str) -> bool {
        let _ = material;
        false
    }
}

/// A random 48-character alphanumeric key that passes the default
/// [`KeyStrength`].
pub fn strong_key() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

/// Runs every check that `caps` and the provider's own
/// [`KeyProvider::capabilities`] allow, in sequence, on `store`, whose
/// providers are `P`s.
pub async fn run<P: FromSource>(store: &dyn TestStore, caps: Capabilities) {
    let declared = store.provider().capabilities();
    reach_is_stated(store, caps.reach);
    declared_capabilities_hold(store).await;
    missing_source_is_not_found(store).await;
    empty_source_is_invalid(store).await;
    published_key_is_reported_first(store).await;
    source_reads_back::<P>(&*store.provider());
    rotation_puts_the_new_key_first_and_keeps_the_old(store).await;
    ids_are_stable_across_fetches_and_distinct_per_key(store).await;
    if caps.created_times {
        versions_are_newest_first_by_creation(store).await;
    }
    if declared.push {
        watch_reports_a_rotation(store).await;
    }
    refresher_follows_a_rotation(store).await;
    if caps.disable {
        disabled_version_stops_verifying(store).await;
    }
    debug_output_never_contains_material(store).await;
    logs_never_contain_material(store).await;
    // Last: a store with stages keeps the rotated version pending.
    if declared.publish {
        rotate_publishes_the_newest_version(store).await;
    }
    if declared.compare_and_set {
        publish_if_publishes_once_over_the_newest(store).await;
    } else {
        publish_if_is_unsupported(store).await;
    }
}

/// The provider says who else reads its store (it decides the default
/// activation delay: a shared store needs staged activation).
pub fn reach_is_stated(store: &dyn TestStore, expected: Reach) {
    let provider = store.provider();
    assert_eq!(provider.reach(), expected, "{}", provider.source());
}

/// A secret that does not exist is [`ProviderErrorKind::NotFound`], the same
/// for every provider (`keyroll check` exits 2).
pub async fn missing_source_is_not_found(store: &dyn TestStore) {
    let provider = store.missing();
    let error = provider
        .fetch()
        .await
        .expect_err("a missing secret is an error, not an empty key set");
    assert_eq!(
        error.kind(),
        ProviderErrorKind::NotFound,
        "{}: {error}",
        provider.source()
    );
}

/// A secret that exists but holds no key is [`ProviderErrorKind::Invalid`],
/// the same for every provider (`keyroll check` exits 1).
pub async fn empty_source_is_invalid(store: &dyn TestStore) {
    let provider = store.empty().await;
    let error = provider
        .fetch()
        .await
        .expect_err("a secret without a key is an error, never an empty list");
    assert_eq!(
        error.kind(),
        ProviderErrorKind::Invalid,
        "{}: {error}",
        provider.source()
    );
}

/// Each of `uris` is refused by `P::from_uri` with a
/// [`ProviderErrorKind::Config`] error (never a panic, never a provider),
/// and no message or `Debug` of those errors shows `hidden` (a password or
/// token the URI carried). Returns the errors, in order, for checks of their
/// wording.
pub fn uris_are_refused<P: FromSource>(uris: &[&str], hidden: &str) -> Vec<ProviderError> {
    uris.iter()
        .map(|uri| {
            let error = P::from_uri(uri).expect_err(uri);
            let shown = format!("{error} {error:?}");
            assert_eq!(error.kind(), ProviderErrorKind::Config, "{uri}: {shown}");
            assert!(hidden.is_empty() || !shown.contains(hidden), "{uri}: {shown}");
            error
        })
        .collect()
}

/// What `provider.source()` shows reads back, through `P::from_source`, to a
/// provider that shows the same; `P` refuses it under another scheme. [`run`]
/// checks the store's provider; a provider's tests call it as well for
/// settings with characters a URI must escape, and compare the provider it
/// returns, read back, with the one they built.
pub fn source_reads_back<P: FromSource>(provider: &dyn KeyProvider) -> P {
    let shown = provider.source();
    let source = KeySource::parse(&shown).unwrap_or_else(|e| panic!("source() {shown:?} is not a URI: {e}"));
    assert_eq!(source.scheme(), P::SCHEME, "{shown:?}");
    let again = P::from_source(&source).unwrap_or_else(|e| panic!("{shown:?} does not read back: {e}"));
    assert_eq!(again.source(), shown);
    let other = KeySource::parse(&format!("not-{shown}")).expect("a URI under another scheme");
    let refused = P::from_source(&other).expect_err("a provider refuses another scheme");
    assert_eq!(refused.kind(), ProviderErrorKind::Config, "{refused}");
    again
}

/// The provider's own `rotate` publishes a version that the next fetch
/// reports first, under the id `rotate` returned.
pub async fn rotate_publishes_the_newest_version(store: &dyn TestStore) {
    store.publish(&strong_key()).await;
    let key = strong_key();
    let published = store
        .provider()
        .rotate(&KeyMaterial::from(key.clone()))
        .await
        .expect("the provider publishes a key");
    let versions = fetch(store).await;
    let first = versions.first().expect("a version after a rotation");
    assert!(is(first, &key), "the rotated key comes first; got {versions:?}");
    assert_eq!(first.id, published.id, "rotate returns the id fetch reports");
    assert!(
        versions.len() >= 2,
        "the previous key is still reported: {versions:?}"
    );
}

/// The key just published is the first version a fetch reports, enabled.
pub async fn published_key_is_reported_first(store: &dyn TestStore) {
    let key = strong_key();
    store.publish(&key).await;
    let versions = fetch(store).await;
    let first = versions
        .first()
        .expect("a store with a published key reports a version");
    assert!(
        is(first, &key),
        "the published key must be reported first; got {versions:?}"
    );
    assert_eq!(first.state, KeyState::Enabled, "a published key is enabled");
}

/// After a rotation the new key comes first and the previous one is still
/// reported after it.
pub async fn rotation_puts_the_new_key_first_and_keeps_the_old(store: &dyn TestStore) {
    let (old, new) = (strong_key(), strong_key());
    store.publish(&old).await;
    store.publish(&new).await;
    let versions = fetch(store).await;
    assert!(
        is(&versions[0], &new),
        "the newest key must come first; got {versions:?}"
    );
    let old_at = position(&versions, &old).expect("the previous key must still be reported after a rotation");
    assert!(
        old_at > 0,
        "the previous key must come after the new one; got {versions:?}"
    );
    assert_eq!(
        versions[old_at].state,
        KeyState::Enabled,
        "a superseded key stays enabled"
    );
}

/// A version keeps its id from one fetch to the next (and from one provider to
/// another), and different keys have different ids.
pub async fn ids_are_stable_across_fetches_and_distinct_per_key(store: &dyn TestStore) {
    let (a, b) = (strong_key(), strong_key());
    store.publish(&a).await;
    store.publish(&b).await;
    let first = fetch(store).await;
    let second = fetch(store).await;
    let ids = |versions: &[KeyVersion]| versions.iter().map(|v| v.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ids(&second), "ids must be stable across fetches");
    let id_a = &first[position(&first, &a).expect("key a reported")].id;
    let id_b = &first[position(&first, &b).expect("key b reported")].id;
    assert_ne!(id_a, id_b, "distinct keys must have distinct ids");
    for (i, version) in first.iter().enumerate() {
        for other in &first[i + 1..] {
            if version.material != other.material {
                assert_ne!(version.id, other.id, "two different keys share an id: {first:?}");
            }
        }
    }
}

/// With creation times, every published version has one and the list is
/// newest first by it.
pub async fn versions_are_newest_first_by_creation(store: &dyn TestStore) {
    let (a, b) = (strong_key(), strong_key());
    store.publish(&a).await;
    // Stores with second resolution must still tell the two apart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.publish(&b).await;
    let versions = fetch(store).await;
    let created = |key: &str| {
        versions[position(&versions, key).expect("published key reported")]
            .created
            .expect("a store with creation times reports one for every published version")
    };
    assert!(
        created(&b) > created(&a),
        "the newer key must have the later creation time"
    );
    let times: Vec<SystemTime> = versions.iter().filter_map(|v| v.created).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "versions must be newest first by creation time; got {versions:?}"
    );
}

/// What the provider declares it cannot do, it refuses as
/// [`Unsupported`](ProviderErrorKind::Unsupported) without changing the
/// store; it returns a watch exactly when it declares push.
pub async fn declared_capabilities_hold(store: &dyn TestStore) {
    store.publish(&strong_key()).await;
    let provider = store.provider();
    let declared = provider.capabilities();
    let source = provider.source();
    let watch = provider.watch().expect("watch starts");
    assert_eq!(
        watch.is_some(),
        declared.push,
        "{source}: a watch exactly when push is declared"
    );
    let before = provider.fetch().await.expect("fetch");
    let id = before[0].id.clone();
    let unsupported = |what: &str, result: Result<(), ProviderError>| match result {
        Err(error) => assert_eq!(
            error.kind(),
            ProviderErrorKind::Unsupported,
            "{source}: {what} is not declared, so it must be refused as unsupported: {error}"
        ),
        Ok(()) => panic!("{source}: {what} is not declared, yet it succeeded"),
    };
    if !declared.publish {
        let published = provider.rotate(&KeyMaterial::from(strong_key())).await;
        unsupported("publish", published.map(|_| ()));
    }
    if !declared.promote {
        unsupported("promote", provider.promote(&id).await);
    }
    if !declared.disable {
        unsupported("disable", provider.disable(&id).await);
    }
    let after = provider.fetch().await.expect("fetch");
    let ids = |versions: &[KeyVersion]| versions.iter().map(|v| v.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&after),
        ids(&before),
        "{source}: a refused write changed the store"
    );
}

/// A provider that pushes notifies its watch when a new key is published.
pub async fn watch_reports_a_rotation(store: &dyn TestStore) {
    store.publish(&strong_key()).await;
    let provider = store.provider();
    let mut watch = provider
        .watch()
        .expect("watch starts")
        .expect("a provider with push returns a watch");
    // Let the watcher settle, then forget whatever it saw while starting.
    tokio::time::sleep(Duration::from_millis(50)).await;
    watch.drain();
    let started = Instant::now();
    store.publish(&strong_key()).await;
    let fired = tokio::time::timeout(PATIENCE, watch.changed()).await;
    assert!(
        matches!(fired, Ok(true)),
        "the watch must fire after a rotation (waited {:?})",
        started.elapsed()
    );
}

/// A refresher follows a rotation: the signing key changes, a token signed
/// before still verifies (flagged for re-signing), and new tokens use the new key.
pub async fn refresher_follows_a_rotation(store: &dyn TestStore) {
    let (old, new) = (strong_key(), strong_key());
    store.publish(&old).await;
    let refresher = start_refresher(store).await;
    let signer = Signer::new(refresher.keyring().clone()).with_salt("conformance");
    assert!(
        signs_with(&refresher, &old),
        "the refresher must start with the published key signing"
    );
    let before = signer.sign("made before the rotation").unwrap();
    let old_id = signer.verify(&before).expect("fresh token verifies").key.id;

    store.publish(&new).await;
    crate::wait_until_within(PATIENCE, "the new key signs", || signs_with(&refresher, &new)).await;

    let verified = signer
        .verify(&before)
        .expect("a token signed before the rotation still verifies");
    assert_eq!(verified.value, "made before the rotation");
    assert_eq!(verified.key.id, old_id, "the old token verifies with the old key");
    assert!(
        verified.needs_resign(),
        "a token verified by a superseded key needs re-signing"
    );

    let after = signer.sign("made after the rotation").unwrap();
    let verified = signer.verify(&after).expect("a new token verifies");
    assert!(
        !verified.needs_resign(),
        "a token of the current key needs no re-signing"
    );
    assert_ne!(verified.key.id, old_id, "new tokens are signed with the new key");
    let new_id = &fetch(store).await[0].id;
    assert_eq!(
        &*verified.key.id,
        new_id.as_str(),
        "new tokens carry the new version's id"
    );
    refresher.shutdown().await;
}

/// Disabling a version in the store makes its tokens stop verifying.
pub async fn disabled_version_stops_verifying(store: &dyn TestStore) {
    let (old, new) = (strong_key(), strong_key());
    store.publish(&old).await;
    let refresher = start_refresher(store).await;
    let signer = Signer::new(refresher.keyring().clone()).with_salt("conformance");
    let token = signer.sign("signed with the key to disable").unwrap();
    store.publish(&new).await;
    crate::wait_until_within(PATIENCE, "the new key signs", || signs_with(&refresher, &new)).await;
    assert!(
        signer.verify(&token).is_ok(),
        "before disabling, the superseded key still verifies"
    );

    assert!(
        store.disable(&old).await,
        "the store must be able to disable a version"
    );
    let versions = fetch(store).await;
    if let Some(at) = position(&versions, &old) {
        assert_ne!(
            versions[at].state,
            KeyState::Enabled,
            "a disabled version must be reported disabled or not at all"
        );
    }
    crate::wait_until_within(PATIENCE, "the disabled key stops verifying", || {
        signer.verify(&token) == Err(VerifyError::UnknownKey)
    })
    .await;
    assert!(
        signer.verify(&signer.sign("still signing").unwrap()).is_ok(),
        "the current key keeps working"
    );
    refresher.shutdown().await;
}

/// Sets environment variable `name` to `value` for the rest of the process,
/// for stores that live in the environment (the env provider's tests).
/// Callers use variable names unique to their test.
#[allow(unsafe_code)]
pub fn set_env_var(name: &str, value: &str) {
    assert!(
        name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "environment variable names in tests are [A-Za-z0-9_]"
    );
    // SAFETY: the environment is only read through `std::env`, whose readers
    // take the same lock as `set_var`; no test of this workspace reads the
    // environment from C code (getenv) while another thread sets it.
    unsafe { std::env::set_var(name, value) }
}

/// The policy the checks use: no activation delay, default strength.
fn policy() -> Policy {
    Policy::default()
        .with_activation_delay(Duration::ZERO)
        .with_strength(KeyStrength::default())
}

async fn start_refresher(store: &dyn TestStore) -> Refresher {
    Refresher::builder(store.provider())
        .policy(policy())
        .interval(REFRESH_INTERVAL)
        .jitter(Duration::from_millis(10))
        .backoff(Duration::from_millis(50), REFRESH_INTERVAL)
        .start()
        .await
        .expect("the refresher starts with the published key")
}

/// True when `refresher`'s keyring signs with `key` now.
pub fn signs_with(refresher: &Refresher, key: &str) -> bool {
    refresher
        .keyring()
        .load()
        .signing_key()
        .material()
        .expose_secret()
        == key.as_bytes()
}

async fn fetch(store: &dyn TestStore) -> Vec<KeyVersion> {
    store.provider().fetch().await.expect("fetch succeeds")
}

fn is(version: &KeyVersion, key: &str) -> bool {
    version.material.expose_secret() == key.as_bytes()
}

fn position(versions: &[KeyVersion], key: &str) -> Option<usize> {
    versions.iter().position(|v| is(v, key))
}
