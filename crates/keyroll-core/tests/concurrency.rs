//! Readers never see a half-built key set: threads verify continuously while a
//! writer swaps key sets thousands of times per second; no valid token is
//! ever rejected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Signer};

const A: &str = "concurrency-key-A-0123456789abcdefghijklmnop";
const B: &str = "concurrency-key-B-0123456789abcdefghijklmnop";

/// Both keys verify in every set; which one signs alternates.
fn set(signing: &str, other: &str) -> KeySet {
    let epoch = SystemTime::UNIX_EPOCH;
    let never_signs_again = Some(epoch + Duration::from_secs(1));
    KeySet::new(
        vec![
            KeyEntry::new(signing, KeyMaterial::from(signing), Some(epoch), None, None),
            KeyEntry::new(
                other,
                KeyMaterial::from(other),
                Some(epoch),
                never_signs_again,
                None,
            ),
        ],
        SystemTime::now(),
    )
    .unwrap()
}

#[test]
fn verifies_never_fail_while_key_sets_are_swapped_thousands_of_times_per_second() {
    let keyring = Keyring::new(set(A, B));
    let tokens: Vec<String> = [A, B]
        .iter()
        .map(|k| {
            Signer::new(Keyring::new(KeySet::single("k", KeyMaterial::from(*k)).unwrap())).with_salt("s")
        })
        .map(|signer| signer.sign("payload").unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let verified = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let signer = Signer::new(keyring.clone()).with_salt("s");
            let tokens = tokens.clone();
            let (stop, verified, rejected) = (stop.clone(), verified.clone(), rejected.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for token in &tokens {
                        match signer.verify(token) {
                            Ok(v) if v.value == "payload" => verified.fetch_add(1, Ordering::Relaxed),
                            _ => rejected.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    // Newly signed tokens verify too, whichever key signs.
                    if signer.verify(&signer.sign("fresh").unwrap()).is_err() {
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut swaps = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        let next = if swaps.is_multiple_of(2) {
            set(B, A)
        } else {
            set(A, B)
        };
        keyring.install(next);
        swaps += 1;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    let per_second = swaps as f64 / elapsed.as_secs_f64();
    println!(
        "{swaps} swaps ({per_second:.0}/s), {} verifications, {} rejected",
        verified.load(Ordering::Relaxed),
        rejected.load(Ordering::Relaxed)
    );
    assert!(per_second > 2000.0, "only {per_second:.0} swaps per second");
    assert!(verified.load(Ordering::Relaxed) > 10_000);
    assert_eq!(rejected.load(Ordering::Relaxed), 0);
    assert_eq!(keyring.generation(), swaps + 1);
}
