//! The rotation policy, as a table of cases: versions in, roles out.

use std::time::{Duration, SystemTime};

use keyroll_core::{
    FirstSeen, KeyState, KeyStrength, KeyVersion, Policy, PolicyError, Role, Stage, Weakness,
};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn key(id: &str) -> KeyVersion {
    KeyVersion::new(id, format!("{id}-0123456789abcdefghijklmnopqrstuvwxyz"))
}

fn created(id: &str, ago: Duration) -> KeyVersion {
    key(id).with_created(now() - ago)
}

fn policy() -> Policy {
    Policy::default()
        .with_activation_delay(Duration::ZERO)
        .with_fallback_window(DAY)
}

struct Case {
    name: &'static str,
    policy: Policy,
    versions: Vec<KeyVersion>,
    expect: Result<Vec<(&'static str, Role)>, PolicyError>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "single_key_signs_at_once_without_activation_delay",
            policy: policy(),
            versions: vec![key("a")],
            expect: Ok(vec![("a", Role::Current)]),
        },
        Case {
            name: "newest_key_signs_and_older_keys_fall_back_django_order",
            policy: policy(),
            versions: vec![key("b"), key("a")],
            expect: Ok(vec![("b", Role::Current), ("a", Role::Fallback)]),
        },
        Case {
            name: "new_key_is_pending_until_activation_delay_has_passed",
            policy: policy().with_activation_delay(5 * MIN),
            versions: vec![created("b", MIN), created("a", DAY)],
            expect: Ok(vec![("b", Role::Pending), ("a", Role::Current)]),
        },
        Case {
            name: "new_key_signs_once_activation_delay_has_passed",
            policy: policy().with_activation_delay(5 * MIN),
            versions: vec![created("b", 6 * MIN), created("a", DAY)],
            expect: Ok(vec![("b", Role::Current), ("a", Role::Fallback)]),
        },
        Case {
            name: "superseded_key_verifies_until_window_ends",
            policy: policy().with_fallback_window(HOUR),
            versions: vec![created("b", 59 * MIN), created("a", DAY)],
            expect: Ok(vec![("b", Role::Current), ("a", Role::Fallback)]),
        },
        Case {
            name: "superseded_key_is_dropped_after_window",
            policy: policy().with_fallback_window(HOUR),
            versions: vec![created("b", 61 * MIN), created("a", DAY)],
            expect: Ok(vec![("b", Role::Current)]),
        },
        Case {
            name: "fallback_window_counts_from_when_the_newer_key_started_signing",
            // b was created 2 h ago but only signed after the 90 min delay:
            // a stopped signing 30 min ago and still verifies with a 1 h window.
            policy: policy()
                .with_fallback_window(HOUR)
                .with_activation_delay(90 * MIN),
            versions: vec![created("b", 2 * HOUR), created("a", DAY)],
            expect: Ok(vec![("b", Role::Current), ("a", Role::Fallback)]),
        },
        Case {
            name: "at_most_max_fallbacks_superseded_keys_verify",
            policy: policy().with_max_fallbacks(2),
            versions: vec![key("d"), key("c"), key("b"), key("a")],
            expect: Ok(vec![
                ("d", Role::Current),
                ("c", Role::Fallback),
                ("b", Role::Fallback),
            ]),
        },
        Case {
            name: "disabled_and_destroyed_versions_never_verify",
            policy: policy(),
            versions: vec![
                key("c").with_state(KeyState::Disabled),
                key("b"),
                key("a").with_state(KeyState::Destroyed),
            ],
            expect: Ok(vec![("b", Role::Current)]),
        },
        Case {
            name: "expired_versions_never_verify",
            policy: policy(),
            versions: vec![key("b"), key("a").with_expires(now() - Duration::from_secs(1))],
            expect: Ok(vec![("b", Role::Current)]),
        },
        Case {
            name: "explicit_expiry_cuts_the_fallback_window_short",
            policy: policy(),
            versions: vec![key("b"), key("a").with_expires(now() + MIN)],
            expect: Ok(vec![("b", Role::Current), ("a", Role::Fallback)]),
        },
        Case {
            name: "explicit_activation_in_the_future_keeps_a_key_pending",
            policy: policy(),
            versions: vec![key("b").with_activates(now() + HOUR), key("a")],
            expect: Ok(vec![("b", Role::Pending), ("a", Role::Current)]),
        },
        Case {
            name: "stage_labels_win_over_order",
            policy: policy(),
            versions: vec![
                created("p", MIN).with_stage(Stage::Pending),
                created("c", HOUR).with_stage(Stage::Current),
                created("o", DAY).with_stage(Stage::Previous),
            ],
            expect: Ok(vec![
                ("p", Role::Pending),
                ("c", Role::Current),
                ("o", Role::Fallback),
            ]),
        },
        Case {
            name: "newly_current_stage_is_held_verify_only_for_activation_delay",
            policy: policy().with_activation_delay(5 * MIN),
            versions: vec![
                created("c", MIN).with_stage(Stage::Current),
                created("o", DAY).with_stage(Stage::Previous),
            ],
            expect: Ok(vec![("c", Role::Pending), ("o", Role::Current)]),
        },
        Case {
            name: "unlabelled_versions_of_a_staged_store_are_fallbacks",
            policy: policy(),
            versions: vec![
                created("c", HOUR).with_stage(Stage::Current),
                created("o", 2 * HOUR).with_stage(Stage::Previous),
                created("old", 3 * HOUR),
            ],
            expect: Ok(vec![
                ("c", Role::Current),
                ("o", Role::Fallback),
                ("old", Role::Fallback),
            ]),
        },
        Case {
            name: "a_brand_new_store_signs_with_its_only_key_before_activation",
            policy: policy().with_activation_delay(5 * MIN),
            versions: vec![created("a", MIN)],
            expect: Ok(vec![("a", Role::Current)]),
        },
        Case {
            name: "the_same_key_listed_twice_counts_once",
            policy: policy(),
            versions: vec![key("a"), key("a")],
            expect: Ok(vec![("a", Role::Current)]),
        },
        Case {
            name: "no_versions_is_refused",
            policy: policy(),
            versions: vec![],
            expect: Err(PolicyError::NoUsableKey),
        },
        Case {
            name: "only_disabled_versions_is_refused",
            policy: policy(),
            versions: vec![key("a").with_state(KeyState::Disabled)],
            expect: Err(PolicyError::NoUsableKey),
        },
        Case {
            name: "only_pending_versions_is_refused",
            policy: policy(),
            versions: vec![key("p").with_stage(Stage::Pending)],
            expect: Err(PolicyError::NoSigningKey),
        },
        Case {
            name: "a_short_key_is_refused",
            policy: policy(),
            versions: vec![KeyVersion::new("short", "too-short-but-varied")],
            expect: Err(PolicyError::WeakKey {
                id: "short".into(),
                weakness: Weakness::TooShort { len: 20, min: 32 },
            }),
        },
        Case {
            name: "a_key_of_few_distinct_characters_is_refused",
            policy: policy(),
            versions: vec![KeyVersion::new("dull", "abab".repeat(16))],
            expect: Err(PolicyError::WeakKey {
                id: "dull".into(),
                weakness: Weakness::TooFewDistinct { distinct: 2, min: 5 },
            }),
        },
        Case {
            name: "a_django_insecure_placeholder_is_refused",
            policy: policy(),
            versions: vec![KeyVersion::new(
                "placeholder",
                "django-insecure-0123456789abcdefghijklmnop",
            )],
            expect: Err(PolicyError::WeakKey {
                id: "placeholder".into(),
                weakness: Weakness::ForbiddenPrefix("django-insecure-".into()),
            }),
        },
        Case {
            name: "a_weak_fallback_is_dropped_not_trusted_and_does_not_block_the_set",
            policy: policy(),
            versions: vec![key("b"), KeyVersion::new("weak", "x")],
            expect: Ok(vec![("b", Role::Current)]),
        },
        Case {
            name: "a_weak_pending_key_refuses_the_whole_set",
            policy: policy().with_activation_delay(5 * MIN),
            versions: vec![
                KeyVersion::new("weak", "x").with_created(now() - MIN),
                created("a", DAY),
            ],
            expect: Err(PolicyError::WeakKey {
                id: "weak".into(),
                weakness: Weakness::TooShort { len: 1, min: 32 },
            }),
        },
        Case {
            name: "a_weak_key_past_its_window_does_not_matter",
            policy: policy().with_fallback_window(HOUR),
            versions: vec![
                created("b", DAY),
                KeyVersion::new("weak", "x").with_created(now() - 2 * DAY),
            ],
            expect: Ok(vec![("b", Role::Current)]),
        },
        Case {
            name: "strength_rule_is_configurable",
            policy: policy().with_strength(KeyStrength::any_non_empty()),
            versions: vec![KeyVersion::new("short", "x")],
            expect: Ok(vec![("short", Role::Current)]),
        },
    ]
}

#[test]
fn policy_cases() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut first_seen = FirstSeen::new();
        first_seen.observe(&case.versions, now());
        let got = case
            .policy
            .evaluate(&case.versions, &first_seen, now())
            .map(|set| {
                set.keys()
                    .iter()
                    .map(|k| (k.id().to_owned(), k.role_at(now())))
                    .collect::<Vec<_>>()
            });
        let want = case.expect.map(|roles| {
            roles
                .into_iter()
                .map(|(id, role)| (id.to_owned(), role))
                .collect::<Vec<_>>()
        });
        if got != want {
            failures.push(format!("{}:\n   got {got:?}\n  want {want:?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn versions_without_created_time_activate_from_when_they_were_first_seen() {
    let policy = policy().with_activation_delay(5 * MIN);
    let old = key("a");
    let mut first_seen = FirstSeen::new();
    first_seen.observe(std::slice::from_ref(&old), now() - DAY);
    let versions = vec![key("b"), old];
    first_seen.observe(&versions, now());

    let set = policy.evaluate(&versions, &first_seen, now()).unwrap();
    assert_eq!(set.signing_key_at(now()).id(), "a");
    assert_eq!(set.key("b").unwrap().role_at(now()), Role::Pending);
    // Roles are functions of time: the same set switches by itself.
    let later = now() + 5 * MIN;
    assert_eq!(set.signing_key_at(later).id(), "b");
    assert_eq!(set.key("a").unwrap().role_at(later), Role::Fallback);
    assert_eq!(set.key("a").unwrap().role_at(later + DAY), Role::Retired);
    assert_eq!(set.next_transition_after(now()), Some(later));
}

#[test]
fn every_replica_computes_the_same_switch_moment_from_store_timestamps() {
    let policy = policy().with_activation_delay(5 * MIN);
    let versions = vec![created("b", MIN), created("a", DAY)];
    // Two replicas that first saw the versions at different moments agree.
    let mut early = FirstSeen::new();
    early.observe(&versions, now() - 30 * Duration::from_secs(1));
    let mut late = FirstSeen::new();
    late.observe(&versions, now());
    let a = policy.evaluate(&versions, &early, now()).unwrap();
    let b = policy.evaluate(&versions, &late, now()).unwrap();
    assert_eq!(a.key("b").unwrap().signs_from(), b.key("b").unwrap().signs_from());
    assert_eq!(a.key("b").unwrap().signs_from(), Some(now() + 4 * MIN));
}

#[test]
fn verifying_keys_come_current_first_then_pending_then_fallbacks() {
    let versions = vec![
        created("p", MIN).with_stage(Stage::Pending),
        created("c", HOUR).with_stage(Stage::Current),
        created("o", DAY).with_stage(Stage::Previous),
    ];
    let set = policy().evaluate(&versions, &FirstSeen::new(), now()).unwrap();
    let order: Vec<_> = set
        .verifying_keys_at(now())
        .map(|(k, role)| (k.id().to_owned(), role))
        .collect();
    assert_eq!(
        order,
        [
            ("c".to_owned(), Role::Current),
            ("p".to_owned(), Role::Pending),
            ("o".to_owned(), Role::Fallback)
        ]
    );
}

#[test]
fn weak_key_error_names_the_key_never_the_material() {
    let versions = vec![KeyVersion::new("v7", "hunter2-hunter2")];
    let err = policy()
        .evaluate(&versions, &FirstSeen::new(), now())
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("v7"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// Issue 24 item 13: `k-00ad2e2dcb08` (the fingerprint of `short`) gave the
/// key away. A weak key whose id is its fingerprint is named by its
/// position in the store's list, newest first, by the policy and by
/// `KeySet::new` alike; a store's own id is still shown.
#[test]
fn a_weak_key_whose_id_is_its_fingerprint_is_named_by_position() {
    let weak = KeyVersion::from_material("short");
    assert_eq!(weak.id, "k-00ad2e2dcb08");
    let versions = vec![
        key("good").with_stage(Stage::Pending),
        weak.clone().with_stage(Stage::Current),
    ];
    let err = policy()
        .evaluate(&versions, &FirstSeen::new(), now())
        .unwrap_err();
    assert_eq!(
        err,
        PolicyError::WeakKey {
            id: "#2 (counting from the newest)".into(),
            weakness: Weakness::TooShort { len: 5, min: 32 },
        }
    );
    let entry = |version: &KeyVersion| {
        keyroll_core::KeyEntry::new(
            version.id.clone(),
            version.material.clone(),
            Some(now()),
            None,
            None,
        )
    };
    let err = keyroll_core::KeySet::new(vec![entry(&weak)], now()).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("key #1 (counting from the newest) is weak"),
        "{shown}"
    );
    assert!(!shown.contains("00ad2e2dcb08"), "{shown}");
    let named = KeyVersion::new("v7", "short");
    let err = keyroll_core::KeySet::new(vec![entry(&named)], now()).unwrap_err();
    assert!(err.to_string().contains("key v7 is weak"), "{err}");
}

#[test]
fn a_bootstrapped_key_has_the_same_window_at_every_evaluation() {
    // A brand-new store: nothing has reached its activation moment yet.
    let policy = policy().with_activation_delay(5 * MIN);
    let versions = vec![
        created("b", Duration::from_secs(10)),
        created("a", Duration::from_secs(20)),
    ];
    let first = policy.evaluate(&versions, &FirstSeen::new(), now()).unwrap();
    let later = policy
        .evaluate(&versions, &FirstSeen::new(), now() + Duration::from_secs(30))
        .unwrap();
    assert_eq!(first.signing_key_at(now()).id(), "a", "the older key signs first");
    assert!(later.unchanged_from(&first), "no new generation without a change");
}

#[test]
fn on_an_activation_tie_the_older_key_bootstraps() {
    let policy = policy().with_activation_delay(5 * MIN);
    let versions = vec![created("b", MIN), created("a", MIN)];
    let set = policy.evaluate(&versions, &FirstSeen::new(), now()).unwrap();
    assert_eq!(set.signing_key_at(now()).id(), "a");
}

#[test]
fn a_signing_key_never_signs_past_its_expiry_even_before_re_evaluation() {
    let policy = policy().with_fallback_window(7 * DAY);
    let expiry = now() + HOUR;
    let versions = vec![created("b", DAY).with_expires(expiry), created("a", 2 * DAY)];
    let set = policy.evaluate(&versions, &FirstSeen::new(), now()).unwrap();
    assert_eq!(set.signing_key_at(now()).id(), "b");
    let after = expiry + MIN;
    assert_eq!(
        set.signing_key_at(after).id(),
        "a",
        "the fallback every replica holds signs"
    );
    assert!(set.verifying_keys_at(after).all(|(key, _)| key.id() != "b"));
    let later = policy.evaluate(&versions, &FirstSeen::new(), after).unwrap();
    assert_eq!(later.signing_key_at(after).id(), "a");
}

#[test]
fn revocations_drop_disabled_destroyed_and_expired_keys_but_not_unlisted_ones() {
    let policy = policy();
    let versions = vec![key("c"), key("b"), key("a")];
    let set = policy.evaluate(&versions, &FirstSeen::new(), now()).unwrap();
    assert!(policy.revoke(&set, &versions, now()).is_none());
    assert!(
        policy.revoke(&set, &[key("c")], now()).is_none(),
        "unlisted keys stay"
    );
    let revoked = vec![
        key("c"),
        key("b").with_state(KeyState::Disabled),
        key("a").with_expires(now()),
    ];
    let kept = policy.revoke(&set, &revoked, now()).unwrap().unwrap();
    let ids: Vec<_> = kept.keys().iter().map(|k| k.id()).collect();
    assert_eq!(ids, ["c"]);
    let err = policy
        .revoke(&set, &[key("c").with_state(KeyState::Destroyed)], now())
        .unwrap()
        .unwrap_err();
    assert_eq!(err, PolicyError::SigningKeyRevoked { id: "c".into() });
}

#[test]
fn retired_lists_enabled_versions_past_their_fallback_window_or_beyond_the_fallback_cap() {
    let policy = policy().with_max_fallbacks(1);
    let versions = vec![
        created("d", HOUR),
        created("c", 2 * HOUR),
        created("b", 3 * HOUR),
        created("a", 3 * DAY).with_state(KeyState::Disabled),
    ];
    let retired = policy.retired(&versions, &FirstSeen::new(), now()).unwrap();
    assert_eq!(retired, ["b"], "c is the one fallback; a is already disabled");
    let windowed = policy.with_max_fallbacks(5);
    let old = vec![created("b", HOUR), created("a", 3 * DAY)];
    assert!(
        windowed
            .retired(&old, &FirstSeen::new(), now())
            .unwrap()
            .is_empty()
    );
    let expired = vec![created("b", 2 * DAY), created("a", 3 * DAY)];
    assert_eq!(
        windowed.retired(&expired, &FirstSeen::new(), now()).unwrap(),
        ["a"]
    );
}
