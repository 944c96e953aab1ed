//! The compare-and-set checks: what every provider declaring
//! [`compare_and_set`](keyroll_core::Capabilities::compare_and_set) does, and
//! what the others refuse.

use keyroll_core::{KeyMaterial, KeyVersion, ProviderErrorKind};

use super::{TestStore, fetch, is, strong_key};

fn ids(versions: &[KeyVersion]) -> Vec<String> {
    versions.iter().map(|v| v.id.clone()).collect()
}

/// `publish_if` over the newest version's id publishes once (the new key is
/// then reported first, under the id returned); a second `publish_if` over
/// that same, now superseded, id is a
/// [`Conflict`](ProviderErrorKind::Conflict) that writes nothing, and so is
/// `publish_if(None)` on a store that holds a key.
pub async fn publish_if_publishes_once_over_the_newest(store: &dyn TestStore) {
    store.publish(&strong_key()).await;
    let provider = store.provider();
    let source = provider.source();
    let newest = fetch(store).await[0].id.clone();

    let key = strong_key();
    let published = provider
        .publish_if(&KeyMaterial::from(key.as_str()), Some(&newest))
        .await
        .unwrap_or_else(|e| panic!("{source}: publish_if over the newest version {newest}: {e}"));
    let after = fetch(store).await;
    assert!(
        is(&after[0], &key),
        "{source}: the key published comes first; got {after:?}"
    );
    assert_eq!(
        after[0].id, published.id,
        "{source}: publish_if returns the id fetch reports"
    );

    for (what, expected) in [
        ("the superseded version", Some(newest.as_str())),
        ("no version", None),
    ] {
        let refused = store
            .provider()
            .publish_if(&KeyMaterial::from(strong_key()), expected)
            .await
            .err()
            .unwrap_or_else(|| panic!("{source}: publish_if over {what} must be refused"));
        assert_eq!(
            refused.kind(),
            ProviderErrorKind::Conflict,
            "{source}: publish_if over {what}: {refused}"
        );
        assert_eq!(
            ids(&fetch(store).await),
            ids(&after),
            "{source}: a refused publish_if over {what} changed the store"
        );
    }
}

/// A provider that does not declare compare-and-set refuses `publish_if` as
/// [`Unsupported`](ProviderErrorKind::Unsupported) without changing the store.
pub async fn publish_if_is_unsupported(store: &dyn TestStore) {
    store.publish(&strong_key()).await;
    let provider = store.provider();
    let before = fetch(store).await;
    let refused = provider
        .publish_if(&KeyMaterial::from(strong_key()), Some(&before[0].id))
        .await
        .err()
        .unwrap_or_else(|| {
            panic!(
                "{}: compare-and-set is not declared, yet publish_if succeeded",
                provider.source()
            )
        });
    assert_eq!(refused.kind(), ProviderErrorKind::Unsupported, "{refused}");
    assert_eq!(
        ids(&fetch(store).await),
        ids(&before),
        "a refused publish_if changed the store"
    );
}
