//! The Vault provider against a real OpenBao dev server: KV v2 versions as
//! key versions, deleted and destroyed versions, errors, and rotation.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{MOUNT, builder, get, provider, put, read_only_policy, token};
use keyroll_core::{
    FromSource, KeyMaterial, KeyProvider, KeyState, KeyVersion, Policy, ProviderErrorKind, Refresher, Signer,
    async_trait,
};
use keyroll_testkit::conformance::{self, Capabilities, TestStore, strong_key};
use keyroll_testkit::openbao::OpenBao;
use keyroll_vault::{Auth, Credential, VaultProvider};

/// `secret/<path>` on a dev server of its own.
#[derive(Debug)]
struct VaultStore {
    bao: OpenBao,
    path: String,
}

#[async_trait]
impl TestStore for VaultStore {
    fn provider(&self) -> Box<dyn KeyProvider> {
        Box::new(provider(&self.bao, &self.path))
    }

    fn missing(&self) -> Box<dyn KeyProvider> {
        Box::new(provider(&self.bao, &format!("{}-never-written", self.path)))
    }

    async fn empty(&self) -> Box<dyn KeyProvider> {
        // Metadata without a version: the secret exists and holds no key.
        let empty = format!("{}-empty", self.path);
        self.bao.bao(&[
            "kv",
            "metadata",
            "put",
            "-max-versions=5",
            &format!("{MOUNT}/{empty}"),
        ]);
        Box::new(provider(&self.bao, &empty))
    }

    async fn publish(&self, material: &str) {
        put(&self.bao, &self.path, material);
    }

    async fn disable(&self, material: &str) -> bool {
        let current = current_version(&self.bao, &self.path);
        let Some(version) = (1..=current).find(|&v| {
            let out = self.bao.bao_output(&[
                "kv",
                "get",
                "-field=key",
                &format!("-version={v}"),
                &format!("{MOUNT}/{}", self.path),
            ]);
            out.status.success() && out.stdout == material.as_bytes()
        }) else {
            return false;
        };
        self.bao.bao(&[
            "kv",
            "delete",
            &format!("-versions={version}"),
            &format!("{MOUNT}/{}", self.path),
        ]);
        true
    }
}

fn current_version(bao: &OpenBao, path: &str) -> u64 {
    let out = bao.bao(&[
        "kv",
        "metadata",
        "get",
        "-format=json",
        &format!("{MOUNT}/{path}"),
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("metadata JSON");
    json["data"]["current_version"].as_u64().expect("current_version")
}

fn ids(versions: &[KeyVersion]) -> Vec<(&str, KeyState)> {
    versions.iter().map(|v| (v.id.as_str(), v.state)).collect()
}

fn is(version: &KeyVersion, key: &str) -> bool {
    version.material.expose_secret() == key.as_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_provider_passes_the_conformance_suite() {
    let Some(bao) = OpenBao::start() else { return };
    let store = VaultStore {
        bao,
        path: "conformance".to_owned(),
    };
    let caps = Capabilities::new().shared().with_created_times().with_disable();
    conformance::run::<VaultProvider>(&store, caps).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_are_reported_newest_first_with_vault_numbers_and_creation_times() {
    let Some(bao) = OpenBao::start() else { return };
    let keys: Vec<String> = (0..3).map(|_| strong_key()).collect();
    let before = SystemTime::now() - Duration::from_secs(1);
    for key in &keys {
        put(&bao, "app", key);
    }
    let versions = provider(&bao, "app").fetch().await.unwrap();
    assert_eq!(
        ids(&versions),
        [
            ("3", KeyState::Enabled),
            ("2", KeyState::Enabled),
            ("1", KeyState::Enabled)
        ]
    );
    for (version, key) in versions.iter().zip(keys.iter().rev()) {
        assert!(
            is(version, key),
            "version {} holds the key written as it",
            version.id
        );
        let created = version.created.expect("Vault keeps created_time");
        assert!(created > before && created <= SystemTime::now() + Duration::from_secs(1));
    }
    assert!(versions[0].created >= versions[1].created);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_and_destroyed_versions_are_reported_as_such_and_never_verify() {
    let Some(bao) = OpenBao::start() else { return };
    let (k1, k2, k3, k4) = (strong_key(), strong_key(), strong_key(), strong_key());
    for key in [&k1, &k2, &k3, &k4] {
        put(&bao, "app", key);
    }
    // Every fetch reads the metadata (see the next test for the default).
    let provider = builder(&bao, "app").metadata_every(1).build().unwrap();
    provider.fetch().await.unwrap();

    bao.bao(&["kv", "delete", "-versions=3", "secret/app"]);
    bao.bao(&["kv", "destroy", "-versions=2", "secret/app"]);
    let versions = provider.fetch().await.unwrap();
    assert_eq!(
        ids(&versions),
        [
            ("4", KeyState::Enabled),
            ("3", KeyState::Disabled),
            ("2", KeyState::Destroyed),
            ("1", KeyState::Enabled)
        ]
    );

    let now = SystemTime::now();
    let mut seen = keyroll_core::FirstSeen::new();
    seen.observe(&versions, now);
    let set = Policy::default()
        .with_activation_delay(Duration::ZERO)
        .evaluate(&versions, &seen, now)
        .unwrap();
    let verifying: Vec<&str> = set.verifying_keys_at(now).map(|(k, _)| k.id()).collect();
    assert_eq!(
        verifying,
        ["4", "1"],
        "deleted and destroyed versions never verify"
    );

    // Undeleting brings the version back, read afresh.
    bao.bao(&["kv", "undelete", "-versions=3", "secret/app"]);
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions[1].id, "3");
    assert_eq!(versions[1].state, KeyState::Enabled);
    assert!(is(&versions[1], &k3));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_fetch_is_one_request_and_a_deletion_shows_at_the_next_metadata_read() {
    let Some(bao) = OpenBao::start() else { return };
    let requests = || {
        (
            bao.requests_for("secret/metadata/app"),
            bao.requests_for("secret/data/app"),
        )
    };
    let fetch = |provider: &VaultProvider| {
        let provider = provider.clone();
        async move {
            let before = requests();
            let versions = provider.fetch().await.unwrap();
            let after = requests();
            (versions, (after.0 - before.0, after.1 - before.1))
        }
    };
    put(&bao, "app", &strong_key());
    put(&bao, "app", &strong_key());
    let provider = builder(&bao, "app").metadata_every(3).build().unwrap();
    let (_, counted) = fetch(&provider).await;
    assert_eq!(
        counted,
        (1, 2),
        "the first fetch reads the metadata and each version"
    );

    bao.bao(&["kv", "delete", "-versions=1", "secret/app"]);
    // The first metadata read comes after a random number of fetches (so a
    // fleet started together spreads them), at most 3.
    for fetches in 1..=3 {
        let (versions, counted) = fetch(&provider).await;
        if counted == (1, 0) {
            assert_eq!(
                ids(&versions),
                [("2", KeyState::Enabled), ("1", KeyState::Disabled)],
                "the metadata read shows the deletion"
            );
            break;
        }
        assert_eq!(counted, (0, 1), "in between, one read of the newest version");
        assert_eq!(
            ids(&versions),
            [("2", KeyState::Enabled), ("1", KeyState::Enabled)]
        );
        assert!(fetches < 3, "the metadata is read within 3 fetches");
    }

    let newest = strong_key();
    put(&bao, "app", &newest);
    let (versions, counted) = fetch(&provider).await;
    assert_eq!(counted, (0, 1), "a new version costs no extra request");
    assert_eq!(
        ids(&versions),
        [
            ("3", KeyState::Enabled),
            ("2", KeyState::Enabled),
            ("1", KeyState::Disabled)
        ]
    );
    assert!(is(&versions[0], &newest));

    let (k4, k5) = (strong_key(), strong_key());
    put(&bao, "app", &k4);
    put(&bao, "app", &k5);
    let (versions, counted) = fetch(&provider).await;
    assert_eq!(
        counted,
        (1, 2),
        "two new versions: the newest, the metadata, then the one in between"
    );
    assert_eq!(
        ids(&versions)[..3],
        [
            ("5", KeyState::Enabled),
            ("4", KeyState::Enabled),
            ("3", KeyState::Enabled)
        ]
    );
    assert!(is(&versions[0], &k5) && is(&versions[1], &k4));

    for expected in [(0, 1), (0, 1), (1, 0)] {
        assert_eq!(
            fetch(&provider).await.1,
            expected,
            "then every third fetch reads the metadata"
        );
    }

    provider.disable("5").await.unwrap();
    let (versions, counted) = fetch(&provider).await;
    assert_eq!(counted, (1, 0), "after disable, the metadata is read at once");
    assert_eq!(versions[0].id, "5");
    assert_eq!(versions[0].state, KeyState::Disabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_versions_are_reported_even_by_a_provider_that_never_read_them() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    put(&bao, "app", &strong_key());
    bao.bao(&["kv", "delete", "-versions=1", "secret/app"]);
    let versions = provider(&bao, "app").fetch().await.unwrap();
    assert_eq!(
        ids(&versions),
        [("2", KeyState::Enabled), ("1", KeyState::Disabled)]
    );
    assert!(
        versions[1].material.is_empty(),
        "a version never read has no material to report"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_versions_not_held_yet_are_read_and_at_most_max_versions() {
    let Some(bao) = OpenBao::start() else { return };
    let reads = || bao.requests_for("secret/data/app");
    for _ in 0..5 {
        put(&bao, "app", &strong_key());
    }
    // The metadata is read at a random phase (0..metadata_every polls in),
    // and a metadata poll reads no data: with the default of 10 the second
    // fetch below was one in ten times a metadata read (the flaky "left 0,
    // right 1" of CI). With u32::MAX the chance is below 1e-9.
    let provider = builder(&bao, "app")
        .max_versions(3)
        .metadata_every(u32::MAX)
        .build()
        .unwrap();

    let before = reads();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(ids(&versions).len(), 3, "bounded by max_versions: {versions:?}");
    assert_eq!(versions[0].id, "5");
    assert_eq!(
        reads() - before,
        3,
        "the first fetch reads each reported version once"
    );

    let before = reads();
    provider.fetch().await.unwrap();
    assert_eq!(reads() - before, 1, "nothing new: one read of the newest version");

    let newest = strong_key();
    put(&bao, "app", &newest);
    let before = reads();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(reads() - before, 1, "one new version: the same one read");
    assert_eq!(
        versions.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["6", "5", "4"]
    );
    assert!(is(&versions[0], &newest));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recreated_secret_is_read_again_even_though_its_version_numbers_repeat() {
    let Some(bao) = OpenBao::start() else { return };
    let (old, new) = (strong_key(), strong_key());
    put(&bao, "app", &old);
    let provider = provider(&bao, "app");
    assert!(is(&provider.fetch().await.unwrap()[0], &old));
    bao.bao(&["kv", "metadata", "delete", "secret/app"]);
    // created_time has sub-second resolution; make sure the new version 1 differs.
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(&bao, "app", &new);
    let versions = provider.fetch().await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].id, "1");
    assert!(
        is(&versions[0], &new),
        "version 1 of the new secret is not the old version 1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_field_is_selectable_and_a_missing_or_non_text_field_is_invalid() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    bao.bao(&["kv", "put", "secret/app", &format!("signing={key}"), "other=x"]);
    let versions = builder(&bao, "app")
        .field("signing")
        .build()
        .unwrap()
        .fetch()
        .await
        .unwrap();
    assert!(is(&versions[0], &key));

    let err = provider(&bao, "app").fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Invalid);
    assert!(err.to_string().contains("no field `key`"), "{err}");
    assert!(
        err.to_string().contains("signing"),
        "names the fields present: {err}"
    );
    assert!(!err.to_string().contains(&key), "never shows material: {err}");

    bao.bao_with_stdin(&["kv", "put", "secret/numeric", "-"], r#"{"key": 12345}"#);
    let err = provider(&bao, "numeric").fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Invalid);
    assert!(err.to_string().contains("not a string"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_is_not_found() {
    let Some(bao) = OpenBao::start() else { return };
    let err = provider(&bao, "nothing/here").fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("secret/nothing/here"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_without_read_permission_is_permission_denied() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    read_only_policy(&bao, "other-only", "other");
    let token = token(&bao, "other-only", &[]);
    let provider = builder(&bao, "app")
        .auth(Auth::token(Credential::value(token.clone())))
        .build()
        .unwrap();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("policy"), "says how to fix it: {err}");
    assert!(
        !format!("{err:?}{provider:?}").contains(&token),
        "never shows the token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_writes_a_new_version_and_keeps_the_other_fields() {
    let Some(bao) = OpenBao::start() else { return };
    let old = strong_key();
    bao.bao(&["kv", "put", "secret/app", &format!("key={old}"), "owner=payments"]);
    let provider = provider(&bao, "app");
    let new = strong_key();
    let published = provider.rotate(&KeyMaterial::from(new.as_str())).await.unwrap();
    assert_eq!(published.id, "2");
    assert!(
        published
            .created
            .is_some_and(|c| c <= SystemTime::now() + Duration::from_secs(1))
    );
    assert_eq!(get(&bao, "app", 2), new);
    assert_eq!(bao.bao(&["kv", "get", "-field=owner", "secret/app"]), "payments");
    let versions = provider.fetch().await.unwrap();
    assert!(is(&versions[0], &new) && is(&versions[1], &old));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_creates_a_secret_that_does_not_exist_yet() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    let published = provider(&bao, "fresh")
        .rotate(&KeyMaterial::from(key.as_str()))
        .await
        .unwrap();
    assert_eq!(published.id, "1");
    assert_eq!(get(&bao, "fresh", 1), key);
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_after_a_stale_version_is_refused_and_writes_nothing() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    let operator_a = provider(&bao, "app");
    // Operator B rotates after A looked at version 1.
    put(&bao, "app", &strong_key());
    let err = operator_a
        .publish_after(&KeyMaterial::from(strong_key()), 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("someone else rotated"), "{err}");
    assert_eq!(current_version(&bao, "app"), 2, "nothing was written");
    let err = operator_a
        .publish_after(&KeyMaterial::from(strong_key()), 0)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), keyroll_core::ProviderErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("check-and-set"), "{err}");
    assert!(
        operator_a
            .publish_after(&KeyMaterial::from(strong_key()), 2)
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_rotations_never_overwrite_each_other() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    let operators: Vec<VaultProvider> = (0..6).map(|_| provider(&bao, "app")).collect();
    let keys: Vec<String> = (0..6).map(|_| strong_key()).collect();
    let results = futures_join(&operators, &keys).await;
    let mut written = 0;
    for (result, key) in results.iter().zip(&keys) {
        match result {
            Ok(published) => {
                written += 1;
                let version: u64 = published.id.parse().unwrap();
                assert_eq!(
                    &get(&bao, "app", version),
                    key,
                    "a published version holds its own key"
                );
            }
            Err(err) => assert!(err.to_string().contains("check-and-set"), "{err}"),
        }
    }
    assert!(written >= 1);
    assert_eq!(
        current_version(&bao, "app"),
        1 + written,
        "every write is accounted for"
    );
}

async fn futures_join(
    operators: &[VaultProvider],
    keys: &[String],
) -> Vec<Result<keyroll_core::Published, keyroll_core::ProviderError>> {
    let tasks: Vec<_> = operators
        .iter()
        .zip(keys)
        .map(|(op, key)| {
            let (op, key) = (op.clone(), KeyMaterial::from(key.as_str()));
            tokio::spawn(async move { op.rotate(&key).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_is_picked_up_by_a_running_keyring() {
    let Some(bao) = OpenBao::start() else { return };
    let old = strong_key();
    put(&bao, "app", &old);
    let refresher = Refresher::builder(provider(&bao, "app"))
        .policy(Policy::default().with_activation_delay(Duration::ZERO))
        .interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let signer = Signer::new(refresher.keyring().clone()).with_salt("sessions");
    let before = signer.sign("user=42").unwrap();
    assert_eq!(signer.verify(&before).unwrap().key.id.as_ref(), "1");

    let new = strong_key();
    let operator = provider(&bao, "app");
    let published = operator.rotate(&KeyMaterial::from(new.as_str())).await.unwrap();
    let started = Instant::now();
    while refresher.keyring().load().signing_key().id() != published.id {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the rotation was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = signer.sign("user=42").unwrap();
    assert_eq!(signer.verify(&after).unwrap().key.id.as_ref(), "2");
    let old_token = signer.verify(&before).unwrap();
    assert!(
        old_token.needs_resign(),
        "tokens of the old key verify and ask for re-signing"
    );
    refresher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_uri_opens_a_working_provider() {
    let Some(bao) = OpenBao::start() else { return };
    let key = strong_key();
    bao.bao(&["kv", "put", "secret/team/app", &format!("signing={key}")]);
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), format!("{}\n", bao.root_token())).unwrap();
    let uri = format!(
        "vault://127.0.0.1:{}/secret/team/app?field=signing&tls=false&token_file={}",
        bao.port(),
        token_file.path().display()
    );
    let provider = VaultProvider::from_uri(&uri).unwrap();
    let versions = provider.fetch().await.unwrap();
    assert!(is(&versions[0], &key));
    assert_eq!(provider.reach(), keyroll_core::Reach::Shared);
    assert_eq!(
        provider.source(),
        format!(
            "vault://127.0.0.1:{}/secret/team/app?field=signing&tls=false",
            bao.port()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_plain_http_server_is_unavailable_not_a_silent_downgrade() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    let provider = builder(&bao, "app")
        .address(format!("https://127.0.0.1:{}", bao.port()))
        .build()
        .unwrap();
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Unavailable, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_is_sent_as_the_vault_namespace_header() {
    let Some(bao) = OpenBao::start() else { return };
    bao.bao(&["namespace", "create", "team-a"]);
    bao.bao(&["secrets", "enable", "-namespace=team-a", "-path=secret", "kv-v2"]);
    let inside = strong_key();
    bao.bao(&[
        "kv",
        "put",
        "-namespace=team-a",
        "secret/app",
        &format!("key={inside}"),
    ]);
    put(&bao, "app", &strong_key());

    let versions = builder(&bao, "app")
        .namespace("team-a")
        .build()
        .unwrap()
        .fetch()
        .await
        .unwrap();
    assert!(is(&versions[0], &inside), "read from the namespace, not the root");
    let uri = format!(
        "vault://127.0.0.1:{}/secret/app?tls=false&namespace=team-a",
        bao.port()
    );
    let provider = VaultProvider::from_uri(&uri).unwrap();
    assert!(
        provider.source().ends_with("&namespace=team-a"),
        "{}",
        provider.source()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_soft_deletes_the_version_and_refuses_ids_that_are_not_versions() {
    let Some(bao) = OpenBao::start() else { return };
    put(&bao, "app", &strong_key());
    put(&bao, "app", &strong_key());
    let provider = provider(&bao, "app");
    provider.fetch().await.unwrap();
    provider.disable("1").await.unwrap();
    let versions = provider.fetch().await.unwrap();
    assert_eq!(
        ids(&versions),
        [("2", KeyState::Enabled), ("1", KeyState::Disabled)]
    );
    let metadata = bao.bao(&["kv", "metadata", "get", "-format=json", "secret/app"]);
    let json: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_ne!(
        json["data"]["versions"]["1"]["deletion_time"], "",
        "Vault records the deletion"
    );
    let err = provider.disable("k-0123456789ab").await.unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Invalid, "{err}");
}
