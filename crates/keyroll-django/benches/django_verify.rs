//! One run, same tokens: Django 5.2's own `Signer.unsign` (Python, timed with
//! `timeit` inside Python) against keyroll-django's `Signer::verify`, for a
//! token of the current key and one of the 16th fallback.
//!
//! `cargo bench -p keyroll-django --bench django_verify` measures; without
//! `--bench` (as `cargo test --all-targets` runs it) it only checks that both
//! sides agree, with a few iterations.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Role};
use keyroll_django::Signer;
use keyroll_testkit::python::{python_with, run_python};
use serde_json::{Value, json};

const FALLBACKS: usize = 16;
const VALUE: &str = "user:42:session-3f9a1c";
const TARGET: f64 = 40.0;

const PYTHON: &str = r#"
import json, sys, timeit
import django
from django.conf import settings

keys, value, quick = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "quick"
settings.configure(SECRET_KEY=keys[0], SECRET_KEY_FALLBACKS=keys[1:])
django.setup()
from django.core import signing

signer = signing.Signer()
tokens = {
    "current": signer.sign(value),
    "fallback": signing.Signer(key=keys[-1], fallback_keys=[]).sign(value),
}
result = {"django": django.get_version(), "python": sys.version.split()[0], "tokens": tokens, "ns": {}}
for name, token in tokens.items():
    assert signer.unsign(token) == value
    timer = timeit.Timer("unsign(token)", globals={"unsign": signer.unsign, "token": token})
    number = 10 if quick else timer.autorange()[0]
    best = min(timer.repeat(repeat=1 if quick else 7, number=number)) / number
    result["ns"][name] = best * 1e9
print(json.dumps(result))
"#;

/// SECRET_KEY and 16 SECRET_KEY_FALLBACKS (newest first), 50 characters each.
fn keys() -> Vec<String> {
    (0..=FALLBACKS)
        .map(|i| {
            format!(
                "django-benchmark-keyroll-bench-key-{i:02}-{:014x}",
                (i as u64 + 1) * 0x9e37_79b9_7f4a
            )
        })
        .collect()
}

fn keyring(keys: &[String]) -> Keyring {
    let entries = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let material = KeyMaterial::from(key.as_str());
            if i == 0 {
                KeyEntry::new("current", material, Some(UNIX_EPOCH), None, None)
            } else {
                KeyEntry::new(
                    format!("fallback-{i}"),
                    material,
                    Some(UNIX_EPOCH),
                    Some(UNIX_EPOCH),
                    None,
                )
            }
        })
        .collect();
    Keyring::new(KeySet::new(entries, SystemTime::now()).expect("the current key signs"))
}

/// Best of `repeats` runs of ns per call, each run calibrated to ~0.2 s.
fn measure(repeats: usize, quick: bool, mut call: impl FnMut()) -> f64 {
    let mut number = 1u64;
    if !quick {
        loop {
            let start = Instant::now();
            for _ in 0..number {
                call();
            }
            if start.elapsed() >= Duration::from_millis(200) {
                break;
            }
            number *= 2;
        }
    } else {
        number = 10;
    }
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..number {
                call();
            }
            start.elapsed().as_nanos() as f64 / number as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let keys = keys();
    let Some(python) = python_with(&["django"]) else {
        return;
    };
    let django: Value = serde_json::from_str(&run_python(
        &python,
        PYTHON,
        &[
            &json!(keys).to_string(),
            VALUE,
            if quick { "quick" } else { "measure" },
        ],
    ))
    .expect("the Python side prints JSON");

    let signer = Signer::new(keyring(&keys));
    println!(
        "Django {} (Python {}) Signer.unsign vs keyroll-django Signer::verify, SECRET_KEY + {FALLBACKS} fallbacks, same tokens",
        django["django"].as_str().unwrap(),
        django["python"].as_str().unwrap()
    );
    println!(
        "{:<22} {:>14} {:>14} {:>9}",
        "token signed with", "Django ns/op", "keyroll ns/op", "ratio"
    );
    let mut below_target = Vec::new();
    for (name, label, id, role) in [
        ("current", "current key", "current".to_owned(), Role::Current),
        (
            "fallback",
            "16th fallback",
            format!("fallback-{FALLBACKS}"),
            Role::Fallback,
        ),
    ] {
        let token = django["tokens"][name].as_str().unwrap();
        let verified = signer.verify(token).expect("keyroll verifies Django's token");
        assert_eq!(
            (verified.value, &*verified.key.id, verified.key.role),
            (VALUE, id.as_str(), role)
        );
        let python_ns = django["ns"][name].as_f64().unwrap();
        let rust_ns = measure(if quick { 1 } else { 7 }, quick, || {
            black_box(signer.verify(black_box(token)).is_ok());
        });
        let ratio = python_ns / rust_ns;
        println!("{label:<22} {python_ns:>14.0} {rust_ns:>14.1} {ratio:>8.1}x");
        if ratio < TARGET {
            below_target.push(label);
        }
    }
    if quick {
        println!("(quick check: run `cargo bench -p keyroll-django --bench django_verify` for figures)");
    } else if below_target.is_empty() {
        println!("target >= {TARGET}x: met in both cases");
    } else {
        println!("target >= {TARGET}x: NOT met for {}", below_target.join(", "));
    }
}
