//! Native sign and verify beside the limit: the fastest correct raw verify, a
//! pre-keyed `Hmac<Sha256>` cloned, updated over the same bytes, finalized and
//! compared with `constant_time_eq_32` (the compare keyroll uses).
//!
//! Criterion measures each case; afterwards the ratios the targets are stated
//! in (native verify <= 1.2x raw HMAC; 64 keys, token of the oldest, <= 1.1x one key) are measured
//! again in one interleaved run, so drift of a shared machine cancels out.
//!
//! `cargo bench -p keyroll-core --bench native`

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use constant_time_eq::constant_time_eq_32;
use criterion::Criterion;
use hmac::{Hmac, Mac};
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Signer};
use sha2::Sha256;

const VALUE: &str = "user=42;session=8f14e45fceea167a5a36dedd4bea2543";

fn key(i: usize) -> KeyMaterial {
    KeyMaterial::from(format!("bench-key-{i:02}-0123456789abcdefghijklmnopqrstuvwxyz"))
}

/// `n` keys: key 0 signs, the others are fallbacks.
fn keyring(n: usize) -> Keyring {
    let epoch = SystemTime::UNIX_EPOCH;
    let keys = (0..n)
        .map(|i| {
            let until = (i > 0).then(|| epoch + Duration::from_secs(1));
            KeyEntry::new(format!("v{i}"), key(i), Some(epoch), until, None)
        })
        .collect();
    Keyring::new(KeySet::new(keys, SystemTime::now()).unwrap())
}

/// A token signed by key `i` alone, with the same salt.
fn token_of(i: usize) -> String {
    Signer::new(Keyring::new(KeySet::single("k", key(i)).unwrap()))
        .with_salt("sessions")
        .sign(VALUE)
        .unwrap()
}

struct Raw {
    mac: Hmac<Sha256>,
    input: Vec<u8>,
    tag: [u8; 32],
}

impl Raw {
    /// The limit: a pre-keyed HMAC over exactly the bytes a token's MAC covers.
    fn new(token: &str) -> Self {
        let (signed, _) = token.rsplit_once('.').unwrap();
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).unwrap();
        let tag = mac
            .clone()
            .chain_update(signed.as_bytes())
            .finalize()
            .into_bytes()
            .into();
        Self {
            mac,
            input: signed.as_bytes().to_vec(),
            tag,
        }
    }
    fn verify(&self) -> bool {
        let mut mac = self.mac.clone();
        mac.update(black_box(&self.input));
        constant_time_eq_32(&mac.finalize().into_bytes().into(), black_box(&self.tag))
    }
}

fn criterion_benches(c: &mut Criterion) {
    let raw = Raw::new(&token_of(0));
    let one = Signer::new(keyring(1)).with_salt("sessions");
    let sixty_four = Signer::new(keyring(64)).with_salt("sessions");
    let newest = token_of(0);
    let oldest = token_of(63);

    let mut group = c.benchmark_group("verify");
    group.bench_function("raw pre-keyed HMAC-SHA256", |b| {
        b.iter(|| black_box(raw.verify()))
    });
    group.bench_function("native, 1 key", |b| {
        b.iter(|| black_box(one.verify_encoded(black_box(&newest)).is_ok()))
    });
    group.bench_function("native, 64 keys, newest", |b| {
        b.iter(|| black_box(sixty_four.verify_encoded(black_box(&newest)).is_ok()))
    });
    group.bench_function("native, 64 keys, oldest", |b| {
        b.iter(|| black_box(sixty_four.verify_encoded(black_box(&oldest)).is_ok()))
    });
    group.bench_function("native, 1 key, decoded to String", |b| {
        b.iter(|| black_box(one.verify(black_box(&newest)).is_ok()))
    });
    group.finish();

    let mut group = c.benchmark_group("sign");
    group.bench_function("native, 1 key", |b| {
        b.iter(|| black_box(one.sign(black_box(VALUE))))
    });
    group.bench_function("native, 64 keys", |b| {
        b.iter(|| black_box(sixty_four.sign(black_box(VALUE))))
    });
    group.finish();
}

/// Median nanoseconds per call of each closure, measured in interleaved rounds.
fn interleaved(cases: &mut [(&str, &mut dyn FnMut() -> bool)], rounds: usize, per_round: usize) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in cases.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..per_round {
                assert!(black_box(f()));
            }
            samples[i].push(start.elapsed().as_nanos() as f64 / per_round as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

fn ratios() {
    let raw = Raw::new(&token_of(0));
    let one = Signer::new(keyring(1)).with_salt("sessions");
    let sixty_four = Signer::new(keyring(64)).with_salt("sessions");
    let newest = token_of(0);
    let oldest = token_of(63);
    let mut raw_f = || raw.verify();
    let mut one_f = || one.verify_encoded(&newest).is_ok();
    let mut sixty_four_new_f = || sixty_four.verify_encoded(&newest).is_ok();
    let mut sixty_four_old_f = || sixty_four.verify_encoded(&oldest).is_ok();
    let mut cases: [(&str, &mut dyn FnMut() -> bool); 4] = [
        ("raw", &mut raw_f),
        ("one", &mut one_f),
        ("sixty_four newest", &mut sixty_four_new_f),
        ("sixty_four oldest", &mut sixty_four_old_f),
    ];
    let ns = interleaved(&mut cases, 200, 2_000);
    println!("\nRatios measured in one interleaved run (median of 200 rounds):");
    println!("  raw HMAC-SHA256 verify        {:>7.1} ns", ns[0]);
    println!(
        "  native verify, 1 key          {:>7.1} ns   {:.2}x raw (target <= 1.2x)",
        ns[1],
        ns[1] / ns[0]
    );
    println!(
        "  native verify, 64 keys newest {:>7.1} ns   {:.2}x one key (target <= 1.1x)",
        ns[2],
        ns[2] / ns[1]
    );
    println!(
        "  native verify, 64 keys oldest {:>7.1} ns   {:.2}x one key (target <= 1.1x)",
        ns[3],
        ns[3] / ns[1]
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion);
    criterion.final_summary();
    // `cargo test --benches` runs this binary in test mode: keep that quick.
    if !std::env::args().any(|a| a == "--test") {
        ratios();
    }
}
