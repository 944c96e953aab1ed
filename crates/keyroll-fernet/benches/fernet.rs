//! Encrypt, decrypt (by key position in a try-all set) and bulk re-encryption.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring};
use keyroll_fernet::{Derive, Encrypter, FernetKey, generate_key};

/// One current key and `fallbacks` fallbacks, newest first.
fn set(keys: &[KeyMaterial]) -> KeySet {
    let now = SystemTime::now();
    let entries = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let from = now - Duration::from_secs(3600 * (i as u64 + 1));
            let until = (i > 0).then(|| now - Duration::from_secs(3600 * i as u64));
            KeyEntry::new(format!("v{i}"), key.clone(), Some(from), until, None)
        })
        .collect();
    KeySet::new(entries, now).unwrap()
}

fn single(key: &KeyMaterial) -> Encrypter {
    Encrypter::new(
        Keyring::new(KeySet::single("x", key.clone()).unwrap()),
        Derive::Raw,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let keys: Vec<KeyMaterial> = (0..5).map(|_| generate_key()).collect();
    let encrypter = Encrypter::new(Keyring::new(set(&keys)), Derive::Raw).unwrap();
    let plaintext = [b'p'; 64];

    let mut group = c.benchmark_group("fernet");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt_64B", |b| {
        b.iter(|| encrypter.encrypt(black_box(&plaintext)).unwrap())
    });
    group.bench_function("encrypt_64B_expanding_the_key_per_call", |b| {
        b.iter(|| {
            FernetKey::from_key_text(black_box(keys[0].expose_secret()))
                .unwrap()
                .encrypt_at(&plaintext, UNIX_EPOCH)
        })
    });
    for position in [0, 4] {
        let token = single(&keys[position]).encrypt(plaintext).unwrap();
        group.bench_function(format!("decrypt_64B_key_at_position_{position}"), |b| {
            b.iter(|| encrypter.decrypt(black_box(&token), None).unwrap())
        });
    }
    let foreign = single(&generate_key()).encrypt(plaintext).unwrap();
    group.bench_function("reject_token_of_unknown_key_5_keys", |b| {
        b.iter(|| encrypter.decrypt(black_box(&foreign), None).unwrap_err())
    });
    let hkdf = Encrypter::new(
        Keyring::new(
            KeySet::single(
                "s",
                KeyMaterial::from("a django secret key, long enough to pass the strength check"),
            )
            .unwrap(),
        ),
        Derive::Hkdf,
    )
    .unwrap();
    group.bench_function("encrypt_64B_hkdf_key", |b| {
        b.iter(|| hkdf.encrypt(black_box(&plaintext)).unwrap())
    });
    group.finish();

    let old = single(&keys[1]);
    let input: String = (0..10_000)
        .map(|i| old.encrypt(format!("row-{i}")).unwrap() + "\n")
        .collect();
    let mut group = c.benchmark_group("reencrypt");
    group.throughput(Throughput::Elements(10_000));
    group.sample_size(10);
    group.bench_function("10k_fallback_tokens", |b| {
        b.iter(|| {
            let mut output = Vec::with_capacity(input.len());
            encrypter
                .reencrypt(input.as_bytes(), &mut output, |_| {})
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
