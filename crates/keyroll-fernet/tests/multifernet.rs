//! MultiFernet semantics over a live key set: which key encrypts, which keys
//! decrypt (and which one did), TTL and clock skew, rotation.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Role};
use keyroll_fernet::{DecryptError, Derive, Encrypter, KeyError, generate_key};

thread_local! {
    // Each test runs on its own thread, so a thread-local clock is per test.
    static NOW: Cell<SystemTime> = const { Cell::new(UNIX_EPOCH) };
}

fn test_clock() -> SystemTime {
    NOW.with(Cell::get)
}

fn set_now(seconds: u64) -> SystemTime {
    let now = UNIX_EPOCH + Duration::from_secs(seconds);
    NOW.with(|c| c.set(now));
    now
}

const T0: u64 = 1_700_000_000;

fn encrypter(keyring: &Keyring) -> Encrypter {
    Encrypter::new(keyring.clone(), Derive::Raw)
        .unwrap()
        .with_clock(test_clock)
}

/// An encrypter holding one key only: stands in for another service (or an
/// older deployment) that encrypts with that key.
fn only(id: &str, key: &KeyMaterial) -> Encrypter {
    encrypter(&Keyring::new(KeySet::single(id, key.clone()).unwrap()))
}

struct Keys {
    pending: KeyMaterial,
    current: KeyMaterial,
    fallback: KeyMaterial,
    retired: KeyMaterial,
}

impl Keys {
    fn new() -> Self {
        Self {
            pending: generate_key(),
            current: generate_key(),
            fallback: generate_key(),
            retired: generate_key(),
        }
    }

    /// v3 pending, v2 current since T0, v1 fallback until T0 + 1 day, v0 retired.
    fn set(&self) -> KeySet {
        let t0 = UNIX_EPOCH + Duration::from_secs(T0);
        let day = Duration::from_secs(86_400);
        KeySet::new(
            vec![
                KeyEntry::new("v3", self.pending.clone(), None, None, None),
                KeyEntry::new("v2", self.current.clone(), Some(t0), None, None),
                KeyEntry::new(
                    "v1",
                    self.fallback.clone(),
                    Some(t0 - day),
                    Some(t0),
                    Some(t0 + day),
                ),
                KeyEntry::new(
                    "v0",
                    self.retired.clone(),
                    Some(t0 - 2 * day),
                    Some(t0 - day),
                    Some(t0),
                ),
            ],
            t0,
        )
        .unwrap()
    }
}

#[test]
fn encrypts_with_the_signing_key_only() {
    set_now(T0 + 10);
    let keys = Keys::new();
    let multi = encrypter(&Keyring::new(keys.set()));
    let token = multi.encrypt("secret").unwrap();
    assert_eq!(
        only("v2", &keys.current).decrypt(&token, None).unwrap().value,
        b"secret"
    );
    for other in [&keys.pending, &keys.fallback, &keys.retired] {
        assert_eq!(
            only("x", other).decrypt(&token, None),
            Err(DecryptError::NoMatchingKey)
        );
    }
}

#[test]
fn decrypt_reports_which_key_and_its_role() {
    set_now(T0 + 10);
    let keys = Keys::new();
    let multi = encrypter(&Keyring::new(keys.set()));
    for (id, key, role) in [
        ("v2", &keys.current, Role::Current),
        ("v3", &keys.pending, Role::Pending),
        ("v1", &keys.fallback, Role::Fallback),
    ] {
        let token = only("elsewhere", key).encrypt(id).unwrap();
        let decrypted = multi.decrypt(&token, None).unwrap();
        assert_eq!(decrypted.value, id.as_bytes());
        assert_eq!((&*decrypted.key.id, decrypted.key.role), (id, role));
        assert_eq!(decrypted.needs_resign(), role != Role::Current, "{id}");
    }
}

#[test]
fn retired_and_unknown_keys_do_not_decrypt() {
    set_now(T0 + 10);
    let keys = Keys::new();
    let multi = encrypter(&Keyring::new(keys.set()));
    let retired = only("v0", &keys.retired).encrypt("old").unwrap();
    let stranger = only("x", &generate_key()).encrypt("foreign").unwrap();
    assert_eq!(multi.decrypt(&retired, None), Err(DecryptError::NoMatchingKey));
    assert_eq!(multi.decrypt(&stranger, None), Err(DecryptError::NoMatchingKey));
}

#[test]
fn fallback_stops_decrypting_when_its_window_ends() {
    let keys = Keys::new();
    let multi = encrypter(&Keyring::new(keys.set()));
    set_now(T0);
    let token = only("v1", &keys.fallback).encrypt("x").unwrap();
    set_now(T0 + 86_399);
    assert_eq!(multi.decrypt(&token, None).unwrap().key.role, Role::Fallback);
    set_now(T0 + 86_400);
    assert_eq!(multi.decrypt(&token, None), Err(DecryptError::NoMatchingKey));
}

#[test]
fn decryptions_are_counted_on_the_key_that_decrypted() {
    set_now(T0 + 10);
    let keys = Keys::new();
    let keyring = Keyring::new(keys.set());
    let multi = encrypter(&keyring);
    let token = only("v1", &keys.fallback).encrypt("x").unwrap();
    for _ in 0..3 {
        multi.decrypt(&token, None).unwrap();
    }
    let set = keyring.load();
    assert_eq!(set.key("v1").unwrap().verifications(), 3);
    assert_eq!(set.key("v2").unwrap().verifications(), 0);
}

#[test]
fn ttl_accepts_a_token_exactly_ttl_old_and_refuses_one_second_more() {
    let keyring = Keyring::new(KeySet::single("k", generate_key()).unwrap());
    let encrypter = encrypter(&keyring);
    set_now(T0);
    let token = encrypter.encrypt("x").unwrap();
    let ttl = Duration::from_secs(60);
    set_now(T0 + 60);
    assert!(encrypter.decrypt(&token, Some(ttl)).is_ok());
    set_now(T0 + 61);
    assert_eq!(
        encrypter.decrypt(&token, Some(ttl)),
        Err(DecryptError::Expired {
            age: Duration::from_secs(61),
            ttl
        })
    );
    // Without a TTL, age does not matter.
    set_now(T0 + 10 * 365 * 86_400);
    assert!(encrypter.decrypt(&token, None).is_ok());
}

#[test]
fn clock_skew_allows_sixty_seconds_ahead_and_only_applies_with_a_ttl() {
    let keyring = Keyring::new(KeySet::single("k", generate_key()).unwrap());
    let encrypter = encrypter(&keyring);
    let ttl = Some(Duration::from_secs(3600));
    set_now(T0 + 60);
    let at_limit = encrypter.encrypt("x").unwrap();
    set_now(T0 + 61);
    let beyond = encrypter.encrypt("x").unwrap();
    set_now(T0);
    assert!(encrypter.decrypt(&at_limit, ttl).is_ok());
    assert_eq!(
        encrypter.decrypt(&beyond, ttl),
        Err(DecryptError::FromTheFuture {
            ahead: Duration::from_secs(61)
        })
    );
    assert!(encrypter.decrypt(&beyond, None).is_ok());
}

#[test]
fn ttl_and_skew_are_checked_before_the_mac_as_the_spec_orders() {
    let keyring = Keyring::new(KeySet::single("k", generate_key()).unwrap());
    let encrypter = encrypter(&keyring);
    set_now(T0);
    let token = encrypter.encrypt("x").unwrap();
    let tampered = tamper_last_mac_byte(&token);
    assert_eq!(
        encrypter.decrypt(&tampered, None),
        Err(DecryptError::NoMatchingKey)
    );
    set_now(T0 + 120);
    assert!(matches!(
        encrypter.decrypt(&tampered, Some(Duration::from_secs(60))),
        Err(DecryptError::Expired { .. })
    ));
}

fn tamper_last_mac_byte(token: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE;
    let mut bytes = URL_SAFE.decode(token).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    URL_SAFE.encode(bytes)
}

#[test]
fn tampering_with_any_byte_is_detected() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE;
    let keyring = Keyring::new(KeySet::single("k", generate_key()).unwrap());
    let encrypter = encrypter(&keyring);
    set_now(T0);
    let token = encrypter.encrypt("a plaintext of two blocks, or so").unwrap();
    let bytes = URL_SAFE.decode(&token).unwrap();
    for position in 1..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x40;
        let error = encrypter.decrypt(&URL_SAFE.encode(&tampered), None).unwrap_err();
        assert_eq!(error, DecryptError::NoMatchingKey, "byte {position}");
    }
    let mut version = bytes.clone();
    version[0] = 0x81;
    assert!(matches!(
        encrypter.decrypt(&URL_SAFE.encode(&version), None),
        Err(DecryptError::Malformed(_))
    ));
}

#[test]
fn rotate_re_encrypts_with_the_current_key_keeping_the_original_timestamp() {
    let keys = Keys::new();
    let multi = encrypter(&Keyring::new(keys.set()));
    set_now(T0 - 3600);
    let old = only("v1", &keys.fallback).encrypt("card-token").unwrap();
    set_now(T0 + 10);
    let rotated = multi.rotate(&old).unwrap();
    let decrypted = multi.decrypt(&rotated, None).unwrap();
    assert_eq!(decrypted.value, b"card-token");
    assert_eq!((&*decrypted.key.id, decrypted.key.role), ("v2", Role::Current));
    assert_eq!(
        decrypted.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(T0 - 3600))
    );
    // The age keeps counting from creation: a TTL shorter than that refuses it.
    assert!(matches!(
        multi.decrypt(&rotated, Some(Duration::from_secs(600))),
        Err(DecryptError::Expired { .. })
    ));
    // Rotating a current token still gives a new token (fresh IV), like MultiFernet.
    let again = multi.rotate(&rotated).unwrap();
    assert_ne!(again, rotated);
    assert_eq!(
        multi.decrypt(&again, None).unwrap().timestamp,
        decrypted.timestamp
    );
}

#[test]
fn rotation_across_a_live_key_change() {
    let (k1, k2) = (generate_key(), generate_key());
    let keyring = Keyring::new(KeySet::single("v1", k1.clone()).unwrap());
    let encrypter = encrypter(&keyring);
    set_now(T0);
    let stored = encrypter.encrypt("db-password").unwrap();
    assert!(!encrypter.decrypt(&stored, None).unwrap().needs_resign());

    // A refresher installs the rotated set: v2 signs, v1 falls back.
    let t1 = set_now(T0 + 100);
    keyring.install(
        KeySet::new(
            vec![
                KeyEntry::new("v2", k2.clone(), Some(t1), None, None),
                KeyEntry::new("v1", k1, Some(UNIX_EPOCH), Some(t1), None),
            ],
            t1,
        )
        .unwrap(),
    );
    let read = encrypter.decrypt(&stored, None).unwrap();
    assert_eq!((&*read.key.id, read.key.role), ("v1", Role::Fallback));
    assert!(read.needs_resign());
    let fresh = encrypter.encrypt("new row").unwrap();
    assert_eq!(&*encrypter.decrypt(&fresh, None).unwrap().key.id, "v2");
    let rotated = encrypter.rotate(&stored).unwrap();
    assert_eq!(&*encrypter.decrypt(&rotated, None).unwrap().key.id, "v2");

    // The old key is removed: only rotated tokens survive.
    keyring.install(KeySet::single("v2", k2).unwrap());
    assert_eq!(encrypter.decrypt(&stored, None), Err(DecryptError::NoMatchingKey));
    let survived = encrypter.decrypt(&rotated, None).unwrap();
    assert_eq!(survived.value, b"db-password");
    assert_eq!(survived.timestamp, Some(UNIX_EPOCH + Duration::from_secs(T0)));
}

#[test]
fn encrypting_and_decrypting_never_fail_while_key_sets_swap() {
    let (k1, k2) = (generate_key(), generate_key());
    let both = |first: (&str, &KeyMaterial), second: (&str, &KeyMaterial)| {
        let now = SystemTime::now();
        KeySet::new(
            vec![
                KeyEntry::new(
                    first.0,
                    first.1.clone(),
                    Some(now - Duration::from_secs(1)),
                    None,
                    None,
                ),
                KeyEntry::new(
                    second.0,
                    second.1.clone(),
                    Some(UNIX_EPOCH),
                    Some(now - Duration::from_secs(1)),
                    None,
                ),
            ],
            now,
        )
        .unwrap()
    };
    let keyring = Keyring::new(both(("a", &k1), ("b", &k2)));
    let encrypter = Arc::new(Encrypter::new(keyring.clone(), Derive::Raw).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (encrypter, stop, started) =
                (Arc::clone(&encrypter), Arc::clone(&stop), Arc::clone(&started));
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let token = encrypter.encrypt(rounds.to_string()).unwrap();
                    let decrypted = encrypter.decrypt(&token, Some(Duration::from_secs(60))).unwrap();
                    assert_eq!(decrypted.value, rounds.to_string().as_bytes());
                    if rounds == 0 {
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    // On a loaded machine a worker may not be scheduled before 200 swaps are
    // done: start swapping once both run.
    while started.load(Ordering::Relaxed) < 2 {
        std::thread::yield_now();
    }
    for swap in 0..200 {
        if swap % 2 == 0 {
            keyring.install(both(("b", &k2), ("a", &k1)));
        } else {
            keyring.install(both(("a", &k1), ("b", &k2)));
        }
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        assert!(worker.join().expect("no worker failed") > 0);
    }
    assert_eq!(keyring.generation(), 201);
}

#[test]
fn a_key_set_with_a_non_fernet_key_is_a_configuration_error() {
    let good = generate_key();
    let not_fernet = KeyMaterial::from("a long Django SECRET_KEY that is not base64 at all!");
    let error = Encrypter::new(
        Keyring::new(KeySet::single("django", not_fernet.clone()).unwrap()),
        Derive::Raw,
    )
    .unwrap_err();
    assert!(matches!(&error, KeyError::NotAFernetKey { id, .. } if id == "django"));

    // Installed later by a refresher: encrypting fails loudly, tokens of good keys still decrypt.
    let keyring = Keyring::new(KeySet::single("good", good.clone()).unwrap());
    let encrypter = encrypter(&keyring);
    set_now(T0);
    let token = encrypter.encrypt("x").unwrap();
    let t1 = set_now(T0 + 1);
    keyring.install(
        KeySet::new(
            vec![
                KeyEntry::new("django", not_fernet, Some(t1), None, None),
                KeyEntry::new("good", good, Some(UNIX_EPOCH), Some(t1), None),
            ],
            t1,
        )
        .unwrap(),
    );
    assert!(matches!(encrypter.encrypt("y"), Err(KeyError::NotAFernetKey { id, .. }) if id == "django"));
    assert!(matches!(encrypter.check(), Err(KeyError::NotAFernetKey { .. })));
    assert_eq!(&*encrypter.decrypt(&token, None).unwrap().key.id, "good");
    let unknown = only("x", &generate_key()).encrypt("z").unwrap();
    let error = encrypter.decrypt(&unknown, None).unwrap_err();
    assert!(matches!(error, DecryptError::Key(_)));
    assert!(!error.is_invalid_token());
}

/// Decryption happens in the token's own buffer. A key whose MAC matches but
/// whose plaintext is badly padded must leave the ciphertext as it found it,
/// so the next key still decrypts the token (as when each try decrypted into
/// a buffer of its own): here both keys share the signing half.
#[test]
fn a_bad_padding_under_one_key_leaves_the_token_intact_for_the_next() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE;
    use keyroll_fernet::FernetKey;

    set_now(T0 + 10);
    let mut current = [1u8; 32];
    let mut fallback = [1u8; 32];
    current[16..].fill(2);
    fallback[16..].fill(3);
    let text = |bytes: &[u8; 32]| KeyMaterial::new(URL_SAFE.encode(bytes));
    let t0 = UNIX_EPOCH + Duration::from_secs(T0);
    let set = KeySet::new(
        vec![
            KeyEntry::new("v2", text(&current), Some(t0), None, None),
            KeyEntry::new(
                "v1",
                text(&fallback),
                Some(t0 - Duration::from_secs(60)),
                Some(t0),
                Some(t0 + Duration::from_secs(86_400)),
            ),
        ],
        t0,
    )
    .unwrap();
    let multi = encrypter(&Keyring::new(set));
    let token = FernetKey::from_bytes(&fallback).encrypt_with_iv(
        b"forty-two bytes of a third party's secret",
        T0,
        &[5; 16],
    );
    assert_eq!(
        only("v2", &text(&current)).decrypt(&token, None),
        Err(DecryptError::BadPadding),
        "the current key's MAC matches, its padding does not"
    );
    for _ in 0..3 {
        let decrypted = multi.decrypt(&token, None).unwrap();
        assert_eq!(decrypted.value, b"forty-two bytes of a third party's secret");
        assert_eq!((&*decrypted.key.id, decrypted.key.role), ("v1", Role::Fallback));
        let rotated = multi.rotate(&token).unwrap();
        assert_eq!(multi.decrypt(&rotated, None).unwrap().key.role, Role::Current);
    }
}
