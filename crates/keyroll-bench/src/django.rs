//! keyroll's Django format against Django's own `Signer.unsign` and
//! `signing.loads`, and against itsdangerous (configured to read Django's
//! format: `django-concat` key derivation, SHA-256, `:`), on the same tokens.
//!
//! Python times itself with `timeit`, all its cases interleaved round by
//! round, keeping each case's best round; the Rust side is measured between
//! and after two Python runs, interleaved too, keeping its best round: the
//! same statistic on both sides.

use std::time::{SystemTime, UNIX_EPOCH};

use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Keyring, Role};
use keyroll_django::{Signer, TimestampSigner};
use keyroll_testkit::python::{python_with, run_python};
use serde_json::{Value, json};

use crate::measure::{Case, Effort, interleaved};

/// Keys held: the plot's counts, and 17 (`SECRET_KEY` + 16 fallbacks) for the target.
pub const KEY_COUNTS: [usize; 5] = [1, 4, 16, 17, 64];
/// The key count of the stated target: the current key and 16 fallbacks.
pub const TARGET_KEYS: usize = 17;
const VALUE: &str = "user:42:session-3f9a1c";

const PYTHON: &str = r#"
import functools, hashlib, importlib.metadata, json, sys, timeit
import django
from django.conf import settings

cfg = json.loads(sys.argv[1])
keys, value, quick, counts, target = cfg["keys"], cfg["value"], cfg["quick"], cfg["counts"], cfg["target"]
settings.configure(SECRET_KEY=keys[0])
django.setup()
from django.core import signing
import itsdangerous

def calibrate(call, token):
    """Calls per sample so that one sample takes about 20 ms."""
    timer = timeit.Timer("call(token)", globals={"call": call, "token": token})
    per_call = min(timer.repeat(repeat=3, number=20)) / 20
    return timer, 5 if quick else max(1, int(0.02 / per_call))

# Every case is timed in each round, round after round (interleaved like the
# Rust side), and its best sample is kept (timeit's statistic).
cases = []
def case(call, token):
    timer, number = calibrate(call, token)
    cases.append({"timer": timer, "number": number, "best": float("inf")})
    return len(cases) - 1

out = {
    "django": django.get_version(),
    "itsdangerous": importlib.metadata.version("itsdangerous"),
    "python": sys.version.split()[0],
    "unsign": [],
    "loads": [],
}
for n in counts:
    held = keys[:n]
    signer = signing.Signer(key=held[0], fallback_keys=held[1:])
    # itsdangerous reads Django's format; it takes keys oldest first.
    its = itsdangerous.Signer(list(reversed(held)), salt="django.core.signing.Signer", sep=":",
                              key_derivation="django-concat", digest_method=hashlib.sha256)
    tokens = {"newest": signer.sign(value), "oldest": signing.Signer(key=held[-1], fallback_keys=[]).sign(value)}
    for which, token in tokens.items():
        assert signer.unsign(token) == value
        assert its.unsign(token).decode() == value
        out["unsign"].append({"keys": n, "token": which, "text": token,
                              "django_ns": case(signer.unsign, token), "itsdangerous_ns": case(its.unsign, token)})
held = keys[:target]
obj = {"user": 42, "session": "3f9a1c", "roles": ["reader"]}
loads = functools.partial(signing.loads, key=held[0], fallback_keys=held[1:])
for which, key in (("newest", held[0]), ("oldest", held[-1])):
    token = signing.dumps(obj, key=key)
    assert loads(token) == obj
    out["loads"].append({"keys": target, "token": which, "text": token, "django_ns": case(loads, token)})
for _ in range(1 if quick else 15):
    for c in cases:
        c["best"] = min(c["best"], c["timer"].timeit(number=c["number"]) / c["number"])
for row in out["unsign"] + out["loads"]:
    for name in ("django_ns", "itsdangerous_ns"):
        if name in row:
            row[name] = cases[row[name]]["best"] * 1e9
print(json.dumps(out))
"#;

/// Django-style keys, newest first, 50 characters each.
pub fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "django-benchmark-keyroll-bench-key-{i:02}-{:014x}",
                (i as u64 + 1) * 0x9e37_79b9_7f4a
            )
        })
        .collect()
}

/// The current key and `keys.len() - 1` fallbacks.
pub fn keyring(keys: &[String]) -> Keyring {
    let entries = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let material = KeyMaterial::from(key.as_str());
            let until = (i > 0).then_some(UNIX_EPOCH);
            KeyEntry::new(format!("k{i}"), material, Some(UNIX_EPOCH), until, None)
        })
        .collect();
    Keyring::new(KeySet::new(entries, SystemTime::now()).expect("the current key signs"))
}

/// One token's verify times, in ns per call.
#[derive(Debug, Clone)]
pub struct DjangoRow {
    /// Keys held.
    pub keys: usize,
    /// `newest` (current key) or `oldest` (last fallback).
    pub token: String,
    /// keyroll-django, best round.
    pub keyroll_ns: f64,
    /// Django, best of `timeit` repeats.
    pub django_ns: f64,
    /// itsdangerous, best of repeats (not measured for `loads`).
    pub itsdangerous_ns: Option<f64>,
}

/// Results of the Django section.
#[derive(Debug, Clone)]
pub struct DjangoResults {
    /// Django version.
    pub django: String,
    /// itsdangerous version.
    pub itsdangerous: String,
    /// Python version.
    pub python: String,
    /// `Signer.unsign` vs `Signer::verify`.
    pub unsign: Vec<DjangoRow>,
    /// `signing.loads` vs `TimestampSigner::verify_object`.
    pub loads: Vec<DjangoRow>,
    /// The limit: a raw pre-keyed HMAC-SHA256 over the bytes a one-key
    /// token's MAC covers (its value), best round.
    pub raw_ns: f64,
}

impl DjangoResults {
    /// The unsign row for `keys` and `token`.
    pub fn unsign_row(&self, keys: usize, token: &str) -> &DjangoRow {
        self.unsign
            .iter()
            .find(|r| r.keys == keys && r.token == token)
            .expect("measured case")
    }
}

/// keyroll-django's one-key verify against the raw limit over the same bytes,
/// without Python (the `--micro` run): `(raw, keyroll)`.
pub fn micro(effort: Effort) -> (crate::measure::Timing, crate::measure::Timing) {
    let signer = Signer::new(keyring(&keys(1)));
    let token = signer.sign(VALUE).unwrap();
    let raw = crate::native::Raw::over(token.rsplit_once(':').expect("value:signature").0);
    let mut cases: Vec<Case<'_>> = vec![
        ("raw", Box::new(|| raw.verify())),
        ("verify", Box::new(|| signer.verify(&token).is_ok())),
    ];
    let t = interleaved(&mut cases, effort);
    (t[0].clone(), t[1].clone())
}

/// Runs the comparison; `None` when the venv lacks Django or itsdangerous.
pub fn run(effort: Effort, quick: bool) -> Option<DjangoResults> {
    let python = python_with(&["django", "itsdangerous"])?;
    let all_keys = keys(*KEY_COUNTS.iter().max().expect("counts"));
    let cfg = json!({
        "keys": all_keys, "value": VALUE, "quick": quick, "counts": KEY_COUNTS, "target": TARGET_KEYS,
    });
    let out: Value = serde_json::from_str(&run_python(&python, PYTHON, &[&cfg.to_string()]))
        .expect("the Python side prints JSON");

    // The Rust side of every Python case, same tokens.
    struct RustCase {
        keys: usize,
        token: String,
        text: String,
        loads: bool,
    }
    let cases_of = |field: &str, loads: bool| -> Vec<RustCase> {
        out[field]
            .as_array()
            .expect("a list of cases")
            .iter()
            .map(|c| RustCase {
                keys: c["keys"].as_u64().expect("keys") as usize,
                token: c["token"].as_str().expect("token").to_owned(),
                text: c["text"].as_str().expect("text").to_owned(),
                loads,
            })
            .collect()
    };
    let mut rust_cases = cases_of("unsign", false);
    rust_cases.extend(cases_of("loads", true));
    let signers: Vec<(Signer, TimestampSigner)> = rust_cases
        .iter()
        .map(|c| {
            let ring = keyring(&all_keys[..c.keys]);
            (Signer::new(ring.clone()), TimestampSigner::for_dumps(ring))
        })
        .collect();
    // Same answers as Django: the value, and which key verified.
    for (case, (signer, dumps)) in rust_cases.iter().zip(&signers) {
        let role = if case.token == "newest" || case.keys == 1 {
            Role::Current
        } else {
            Role::Fallback
        };
        let id = if role == Role::Current {
            "k0".to_owned()
        } else {
            format!("k{}", case.keys - 1)
        };
        let key = if case.loads {
            let v = dumps
                .verify_object::<Value>(&case.text, None)
                .expect("keyroll reads Django's dumps");
            assert_eq!(v.value["user"], 42);
            v.key
        } else {
            let v = signer
                .verify(&case.text)
                .expect("keyroll verifies Django's token");
            assert_eq!(v.value, VALUE);
            v.key
        };
        assert_eq!(
            (&*key.id, key.role),
            (id.as_str(), role),
            "{} keys, {}",
            case.keys,
            case.token
        );
    }
    // The limit, over the bytes the MAC of the one-key token covers.
    let one_key = &rust_cases[0].text;
    let raw = crate::native::Raw::over(one_key.rsplit_once(':').expect("value:signature").0);
    let mut measured: Vec<Case<'_>> = rust_cases
        .iter()
        .zip(&signers)
        .map(|(case, (signer, dumps))| -> Case<'_> {
            if case.loads {
                (
                    "loads",
                    Box::new(move || dumps.verify_object::<Value>(&case.text, None).is_ok()),
                )
            } else {
                ("verify", Box::new(move || signer.verify(&case.text).is_ok()))
            }
        })
        .collect();
    measured.push(("raw", Box::new(|| raw.verify())));
    // Python ran first; measure again now and keep each case's best.
    let again = interleaved(&mut measured, effort);
    let python_after = if quick {
        None
    } else {
        Some(run_python(&python, PYTHON, &[&cfg.to_string()]))
    };
    let last = interleaved(&mut measured, effort);
    let best: Vec<f64> = again.iter().zip(&last).map(|(a, b)| a.min.min(b.min)).collect();
    // And Python's best of its two runs (one in a quick run), the Rust run between them.
    let out2: Option<Value> = python_after.map(|text| serde_json::from_str(&text).expect("JSON"));
    let py = |field: &str, i: usize, name: &str| -> Option<f64> {
        let first = out[field][i][name].as_f64()?;
        let second = out2.as_ref().and_then(|o| o[field][i][name].as_f64());
        Some(second.map_or(first, |s| first.min(s)))
    };
    let unsign_len = out["unsign"].as_array().expect("list").len();
    let row = |i: usize, case: &RustCase, field: &str, j: usize| DjangoRow {
        keys: case.keys,
        token: case.token.clone(),
        keyroll_ns: best[i],
        django_ns: py(field, j, "django_ns").expect("Django timing"),
        itsdangerous_ns: py(field, j, "itsdangerous_ns"),
    };
    let unsign = (0..unsign_len)
        .map(|i| row(i, &rust_cases[i], "unsign", i))
        .collect();
    let loads = (unsign_len..rust_cases.len())
        .map(|i| row(i, &rust_cases[i], "loads", i - unsign_len))
        .collect();
    let text = |k: &str| out[k].as_str().expect("version").to_owned();
    Some(DjangoResults {
        raw_ns: best[rust_cases.len()],
        django: text("django"),
        itsdangerous: text("itsdangerous"),
        python: text("python"),
        unsign,
        loads,
    })
}
