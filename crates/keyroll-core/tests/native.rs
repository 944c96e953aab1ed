//! The native token format: round trips, key reporting, tampering, expiry, vectors.

use std::time::{Duration, SystemTime};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Role, Signer, VerifyError};

const KEY_A: &str = "keyroll-test-key-A-0123456789abcdefghijklmnop";
const KEY_B: &str = "keyroll-test-key-B-0123456789abcdefghijklmnop";

fn fixed_clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn ring(key: &str) -> Keyring {
    Keyring::new(KeySet::single("a", KeyMaterial::from(key)).unwrap())
}

/// b signs, a is a fallback until `a_until`, p is pending.
fn rotated_ring(a_until: SystemTime) -> Keyring {
    let epoch = SystemTime::UNIX_EPOCH;
    let switch = fixed_clock() - Duration::from_secs(3600);
    let set = KeySet::new(
        vec![
            KeyEntry::new(
                "p",
                KeyMaterial::from(format!("{KEY_A}-pending")),
                None,
                None,
                None,
            ),
            KeyEntry::new("b", KeyMaterial::from(KEY_B), Some(switch), None, None),
            KeyEntry::new(
                "a",
                KeyMaterial::from(KEY_A),
                Some(epoch),
                Some(switch),
                Some(a_until),
            ),
        ],
        fixed_clock(),
    )
    .unwrap();
    Keyring::new(set)
}

#[test]
fn format_vectors_from_docs_format_md() {
    let signer = Signer::new(ring(KEY_A)).with_clock(fixed_clock);
    assert_eq!(
        signer.sign("hello").unwrap(),
        "kr1.higz2-aPq2Y.aGVsbG8.zsi7KbqckIsFpdtyKCBy1ZeFE1wEhnFddl4H8UYmhT8"
    );
    let salted = Signer::new(ring(KEY_A))
        .with_salt("sessions")
        .with_timestamps()
        .with_clock(fixed_clock);
    assert_eq!(
        salted.sign("user=42").unwrap(),
        "kr1t.higz2-aPq2Y.1700000000.dXNlcj00Mg.JQh26LBY78iNC58XuKtt3liHhC8OJiQG02j7bavuOMU"
    );
}

#[test]
fn strings_bytes_and_serde_values_round_trip() {
    let signer = Signer::new(ring(KEY_A)).with_salt("s");
    for value in ["", "plain", "with.dots:and:colons", "ünïcødé ✓", "a\nb"] {
        assert_eq!(signer.verify(&signer.sign(value).unwrap()).unwrap().value, value);
    }
    let bytes = [0u8, 255, 1, 2, 3];
    assert_eq!(
        signer
            .verify_bytes(&signer.sign_bytes(&bytes).unwrap())
            .unwrap()
            .value,
        bytes
    );
    let value = serde_json::json!({"user": 42, "roles": ["admin"]});
    let token = signer.sign_value(&value).unwrap();
    assert_eq!(
        signer.verify_value::<serde_json::Value>(&token).unwrap().value,
        value
    );
}

#[test]
fn tokens_are_url_safe() {
    let signer = Signer::new(ring(KEY_A)).with_timestamps();
    let token = signer.sign_bytes(&[0xfb, 0xff, 0xfe, 0x3e, 0x3f]).unwrap();
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "{token}"
    );
}

#[test]
fn a_salt_never_verifies_tokens_of_another_salt() {
    let keyring = ring(KEY_A);
    let sessions = Signer::new(keyring.clone()).with_salt("sessions");
    let resets = Signer::new(keyring).with_salt("password-reset");
    assert_eq!(
        resets.verify(&sessions.sign("u").unwrap()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn current_key_verifies_without_resign() {
    let signer = Signer::new(rotated_ring(fixed_clock() + Duration::from_secs(60))).with_clock(fixed_clock);
    let verified = signer.verify(&signer.sign("v").unwrap()).unwrap();
    assert_eq!(&*verified.key.id, "b");
    assert_eq!(verified.key.role, Role::Current);
    assert!(!verified.needs_resign());
}

#[test]
fn superseded_key_verifies_as_fallback_and_asks_for_resign() {
    let old = Signer::new(ring(KEY_A))
        .with_clock(fixed_clock)
        .sign("session")
        .unwrap();
    let signer = Signer::new(rotated_ring(fixed_clock() + Duration::from_secs(60))).with_clock(fixed_clock);
    let verified = signer.verify(&old).unwrap();
    assert_eq!(verified.value, "session");
    assert_eq!(&*verified.key.id, "a");
    assert_eq!(verified.key.role, Role::Fallback);
    assert!(verified.needs_resign());
    // Re-signing uses the current key.
    assert_eq!(
        signer
            .verify(&signer.sign(&verified.value).unwrap())
            .unwrap()
            .key
            .role,
        Role::Current
    );
}

#[test]
fn superseded_key_is_refused_once_its_window_has_ended() {
    let old = Signer::new(ring(KEY_A))
        .with_clock(fixed_clock)
        .sign("session")
        .unwrap();
    let signer = Signer::new(rotated_ring(fixed_clock() - Duration::from_secs(1))).with_clock(fixed_clock);
    assert_eq!(signer.verify(&old), Err(VerifyError::UnknownKey));
}

#[test]
fn pending_key_verifies_but_does_not_sign() {
    let pending = Signer::new(ring(&format!("{KEY_A}-pending")))
        .sign("early")
        .unwrap();
    let signer = Signer::new(rotated_ring(fixed_clock())).with_clock(fixed_clock);
    let verified = signer.verify(&pending).unwrap();
    assert_eq!(verified.key.role, Role::Pending);
    assert!(verified.needs_resign());
}

#[test]
fn a_token_of_an_unknown_key_is_refused() {
    let foreign = Signer::new(ring(KEY_B)).sign("x").unwrap();
    assert_eq!(
        Signer::new(ring(KEY_A)).verify(&foreign),
        Err(VerifyError::UnknownKey)
    );
}

#[test]
fn any_tampering_is_detected() {
    let signer = Signer::new(ring(KEY_A)).with_timestamps();
    let token = signer.sign("user=42").unwrap();
    let fields: Vec<&str> = token.split('.').collect();
    let mut tampered = vec![
        token.replace("kr1t.", "kr1."),
        format!("{token}A"),
        token[..token.len() - 1].to_owned(),
    ];
    // Change one character in each field after the header.
    for field in 1..fields.len() {
        let mut copy: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        let first = copy[field].remove(0);
        copy[field].insert(0, if first == 'A' { 'B' } else { 'A' });
        tampered.push(copy.join("."));
    }
    for bad in tampered {
        assert!(signer.verify(&bad).is_err(), "accepted tampered token {bad}");
    }
}

#[test]
fn malformed_tokens_are_typed_errors() {
    let signer = Signer::new(ring(KEY_A));
    let mac = "A".repeat(43);
    let cases = [
        (String::new(), "not a keyroll token"),
        ("kr1".into(), "not a keyroll v1 token"),
        (format!("kr2.AAAAAAAAAAA.eA.{mac}"), "not a keyroll v1 token"),
        ("kr1.AAAAAAAAAAA.eA.short".into(), "too short"),
        (
            format!("kr1.short.eAeAeAeA.{mac}"),
            "key id is not 11 base64url characters",
        ),
        (
            format!("kr1.AAAAAAAAAAA.eA.{mac}A"),
            "signature is not 43 base64url characters",
        ),
        (format!("kr1t.AAAAAAAAAAA.eA.{mac}"), "no timestamp"),
        (
            format!("kr1t.AAAAAAAAAAA.x1.eA.{mac}"),
            "timestamp is not decimal seconds",
        ),
        (
            format!("kr1t.AAAAAAAAAAA.99999999999999999999.eA.{mac}"),
            "timestamp out of range",
        ),
        (format!("kr1.AAAAAAAAAAA.eA.extra.{mac}"), "too many fields"),
    ];
    for (token, reason) in cases {
        assert_eq!(
            signer.verify(&token),
            Err(VerifyError::Malformed(reason)),
            "{token:?}"
        );
    }
}

#[test]
fn max_age_refuses_old_and_untimed_tokens() {
    let keyring = ring(KEY_A);
    let past = || fixed_clock() - Duration::from_secs(120);
    let old = Signer::new(keyring.clone())
        .with_timestamps()
        .with_clock(past)
        .sign("x")
        .unwrap();
    let strict = Signer::new(keyring.clone())
        .with_max_age(Duration::from_secs(60))
        .with_clock(fixed_clock);
    assert_eq!(
        strict.verify(&old),
        Err(VerifyError::Expired {
            age: Duration::from_secs(120),
            max_age: Duration::from_secs(60)
        })
    );
    let lenient = Signer::new(keyring.clone())
        .with_max_age(Duration::from_secs(121))
        .with_clock(fixed_clock);
    let verified = lenient.verify(&old).unwrap();
    assert_eq!(verified.timestamp, Some(past()));
    let untimed = Signer::new(keyring).sign("x").unwrap();
    assert_eq!(strict.verify(&untimed), Err(VerifyError::MissingTimestamp));
}

#[test]
fn timestamps_far_in_the_future_are_refused() {
    let keyring = ring(KEY_A);
    let future = || fixed_clock() + Duration::from_secs(3600);
    let slightly = || fixed_clock() + Duration::from_secs(30);
    let signer = Signer::new(keyring.clone()).with_clock(fixed_clock);
    let from_future = Signer::new(keyring.clone())
        .with_timestamps()
        .with_clock(future)
        .sign("x")
        .unwrap();
    assert_eq!(signer.verify(&from_future), Err(VerifyError::FromTheFuture));
    let skewed = Signer::new(keyring)
        .with_timestamps()
        .with_clock(slightly)
        .sign("x")
        .unwrap();
    assert!(signer.verify(&skewed).is_ok(), "30 s of clock skew is tolerated");
}

#[test]
fn verifications_are_counted_per_key_across_swaps() {
    let keyring = ring(KEY_A);
    let signer = Signer::new(keyring.clone());
    let token = signer.sign("x").unwrap();
    signer.verify(&token).unwrap();
    signer.verify(&token).unwrap();
    keyring.install(KeySet::single("a", KeyMaterial::from(KEY_A)).unwrap());
    signer.verify(&token).unwrap();
    assert_eq!(keyring.load().key("a").unwrap().verifications(), 3);
}

#[test]
fn debug_output_never_contains_key_material() {
    let keyring = rotated_ring(fixed_clock());
    let signer = Signer::new(keyring.clone());
    let shown = format!("{keyring:?} {signer:?} {:?}", keyring.load());
    for secret in [KEY_A, KEY_B] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains(&secret[..20]), "{shown}");
    }
}

#[test]
fn a_mac_with_non_canonical_trailing_bits_is_refused() {
    let signer = Signer::new(ring(KEY_A));
    let token = signer.sign("user=42").unwrap();
    // The 43rd character carries 4 bits of the MAC and 2 zero bits: a
    // neighbour in the alphabet decodes to the same 32 bytes unless the
    // decoder refuses non-zero trailing bits.
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = token.as_bytes()[token.len() - 1] as char;
    let index = ALPHABET.find(last).unwrap();
    let sibling = ALPHABET.as_bytes()[index ^ 1] as char;
    let forged = format!("{}{sibling}", &token[..token.len() - 1]);
    assert_eq!(
        signer.verify(&forged).unwrap_err(),
        VerifyError::Malformed("signature is not base64url of 32 bytes")
    );
    assert!(signer.verify(&token).is_ok());
}

#[test]
fn a_retired_key_is_refused_at_once_even_without_a_refresher() {
    // System clock, no refresher to install a new generation: roles come from
    // the generation's snapshot until its next transition, then exactly.
    let now = SystemTime::now();
    let until = now + Duration::from_millis(50);
    let epoch = SystemTime::UNIX_EPOCH;
    let set = KeySet::new(
        vec![
            KeyEntry::new("b", KeyMaterial::from(KEY_B), Some(epoch), None, None),
            KeyEntry::new(
                "a",
                KeyMaterial::from(KEY_A),
                Some(epoch),
                Some(epoch),
                Some(until),
            ),
        ],
        now,
    )
    .unwrap();
    let keyring = Keyring::new(set);
    let signer = Signer::new(keyring.clone());
    let old = Signer::new(ring(KEY_A)).sign("user=42").unwrap();
    let verified = signer.verify(&old).unwrap();
    assert_eq!(verified.key.role, Role::Fallback);
    while SystemTime::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(signer.verify(&old).unwrap_err(), VerifyError::UnknownKey);
    assert_eq!(keyring.generation(), 1, "no new generation was installed");
}

#[test]
fn every_one_of_64_keys_finds_its_tokens() {
    let epoch = SystemTime::UNIX_EPOCH;
    let material =
        |i: usize| KeyMaterial::from(format!("keyroll-test-key-{i:02}-0123456789abcdefghijklmnop"));
    let keys = (0..64)
        .map(|i| {
            let until = (i > 0).then(|| epoch + Duration::from_secs(1));
            KeyEntry::new(format!("v{i}"), material(i), Some(epoch), until, None)
        })
        .collect();
    let signer = Signer::new(Keyring::new(KeySet::new(keys, SystemTime::now()).unwrap())).with_salt("s");
    for i in 0..64 {
        let token = Signer::new(Keyring::new(KeySet::single("x", material(i)).unwrap()))
            .with_salt("s")
            .sign("v")
            .unwrap();
        let verified = signer.verify(&token).unwrap();
        assert_eq!(&*verified.key.id, format!("v{i}"));
    }
    let stranger = Signer::new(ring(KEY_A)).with_salt("s").sign("v").unwrap();
    assert_eq!(signer.verify(&stranger).unwrap_err(), VerifyError::UnknownKey);
}

#[test]
fn two_entries_with_the_same_key_are_both_tried() {
    // The same material under two ids (a store that re-published it): the
    // first in the set's order that verifies reports.
    let epoch = SystemTime::UNIX_EPOCH;
    let set = KeySet::new(
        vec![
            KeyEntry::new("again", KeyMaterial::from(KEY_A), Some(epoch), None, None),
            KeyEntry::new("first", KeyMaterial::from(KEY_A), Some(epoch), Some(epoch), None),
        ],
        SystemTime::now(),
    )
    .unwrap();
    let signer = Signer::new(Keyring::new(set));
    let verified = signer.verify(&signer.sign("x").unwrap()).unwrap();
    assert_eq!(&*verified.key.id, "again");
}

#[test]
fn verifications_from_many_threads_are_all_counted() {
    let keyring = ring(KEY_A);
    let signer = Signer::new(keyring.clone());
    let token = signer.sign("x").unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1000 {
                    signer.verify_encoded(&token).unwrap();
                }
            });
        }
    });
    assert_eq!(keyring.load().key("a").unwrap().verifications(), 4000);
}
