//! keyroll-jwt's `Signer::verify` against the `jsonwebtoken` crate's
//! `decode` holding one key, same HS256 token, same claims type and checks
//! (signature, `exp` with leeway): criterion measures each case, then one
//! interleaved run prints the ratio. A 16-key ring with a token of the
//! oldest fallback shows that `kid` keeps verification at one HMAC.
//!
//! `cargo bench -p keyroll-jwt --bench jwt_verify` measures; `cargo test
//! --benches` runs it quickly.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Role};
use keyroll_jwt::Signer;
use keyroll_testkit::bench::interleaved;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Claims {
    sub: String,
    admin: bool,
    iat: u64,
    exp: u64,
}

fn material(i: usize) -> String {
    format!("keyroll-jwt-bench-key-{i:02}-0123456789abcdefghijklmnop")
}

/// `count` keys: `k0` current, the others fallbacks (oldest last).
fn keyring(count: usize) -> Keyring {
    let entries = (0..count)
        .map(|i| {
            let until = (i > 0).then_some(UNIX_EPOCH);
            KeyEntry::new(
                format!("k{i}"),
                KeyMaterial::from(material(i)),
                Some(UNIX_EPOCH),
                until,
                None,
            )
        })
        .collect();
    Keyring::new(KeySet::new(entries, SystemTime::now()).expect("k0 signs"))
}

fn claims() -> Claims {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    Claims {
        sub: "user-42".into(),
        admin: false,
        iat: now,
        exp: now + 3600,
    }
}

/// A token signed with key `index` alone, as a replica that still signs with it.
fn token_of(index: usize) -> String {
    let single =
        Keyring::new(KeySet::single(format!("k{index}"), KeyMaterial::from(material(index))).unwrap());
    Signer::new(single).sign(&claims()).unwrap()
}

struct Cases {
    token: String,
    oldest: String,
    one: Signer,
    sixteen: Signer,
    reference: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

impl Cases {
    fn new() -> Self {
        let cases = Self {
            token: token_of(0),
            oldest: token_of(15),
            one: Signer::new(keyring(1)),
            sixteen: Signer::new(keyring(16)),
            reference: jsonwebtoken::DecodingKey::from_secret(material(0).as_bytes()).unwrap(),
            validation: jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
        };
        let ours = cases.one.verify::<Claims>(&cases.token).unwrap();
        let theirs = cases.jsonwebtoken(&cases.token).unwrap();
        assert_eq!(ours.value, theirs.claims);
        let oldest = cases.sixteen.verify::<Claims>(&cases.oldest).unwrap();
        assert_eq!((&*oldest.key.id, oldest.key.role), ("k15", Role::Fallback));
        cases
    }

    fn jsonwebtoken(&self, token: &str) -> jsonwebtoken::errors::Result<jsonwebtoken::TokenData<Claims>> {
        jsonwebtoken::decode::<Claims>(token, &self.reference, &self.validation)
    }
}

fn criterion_benches(c: &mut Criterion, cases: &Cases) {
    let mut group = c.benchmark_group("jwt_verify");
    group.bench_function("jsonwebtoken decode, 1 key", |b| {
        b.iter(|| cases.jsonwebtoken(black_box(&cases.token)).is_ok())
    });
    group.bench_function("keyroll-jwt verify, 1 key", |b| {
        b.iter(|| cases.one.verify::<Claims>(black_box(&cases.token)).is_ok())
    });
    group.bench_function("keyroll-jwt verify, 16 keys, oldest", |b| {
        b.iter(|| cases.sixteen.verify::<Claims>(black_box(&cases.oldest)).is_ok())
    });
    group.finish();
}

fn ratios(cases: &Cases, quick: bool) {
    let mut theirs = || cases.jsonwebtoken(black_box(&cases.token)).is_ok();
    let mut ours = || cases.one.verify::<Claims>(black_box(&cases.token)).is_ok();
    let mut oldest = || cases.sixteen.verify::<Claims>(black_box(&cases.oldest)).is_ok();
    let (rounds, per_round) = if quick { (3, 10) } else { (200, 2_000) };
    let ns = interleaved(&mut [&mut theirs, &mut ours, &mut oldest], rounds, per_round);
    println!("\nOne interleaved run (median of {rounds} rounds), same HS256 token, same claims type:");
    println!("  jsonwebtoken 12 decode, 1 key      {:>7.1} ns", ns[0]);
    println!(
        "  keyroll-jwt verify, 1 key             {:>7.1} ns   {:.2}x jsonwebtoken",
        ns[1],
        ns[1] / ns[0]
    );
    println!(
        "  keyroll-jwt verify, 16 keys, oldest   {:>7.1} ns   {:.2}x one key (kid: one HMAC)",
        ns[2],
        ns[2] / ns[1]
    );
}

fn main() {
    let cases = Cases::new();
    let quick = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    if !quick {
        let mut criterion = Criterion::default()
            .configure_from_args()
            .measurement_time(Duration::from_secs(3));
        criterion_benches(&mut criterion, &cases);
        criterion.final_summary();
    }
    ratios(&cases, quick);
}
