//! Interop both ways with the real Python peers from the test venv:
//! `cryptography` 48's `Fernet`/`MultiFernet`, and django-fernet-fields' HKDF
//! key derivation (`fernet_fields/hkdf.py`).

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::rotated_set;
use keyroll_core::{KeyMaterial, KeySet, Keyring, Role};
use keyroll_fernet::{Derive, Encrypter, generate_key, hkdf_fernet_key};
use keyroll_testkit::python::{python_with, run_python};
use serde_json::{Value, json};

fn text(key: &KeyMaterial) -> &str {
    std::str::from_utf8(key.expose_secret()).unwrap()
}

/// Runs `code` with one JSON document as argument and parses its JSON output.
fn python_json(python: &std::path::Path, code: &str, input: &Value) -> Value {
    serde_json::from_str(&run_python(python, code, &[&input.to_string()])).expect("python prints JSON")
}

const PLAINTEXTS: [&str; 4] = [
    "",
    "hello",
    "ünïcødé — 🔑",
    "a plaintext longer than one AES block, several in fact",
];

#[test]
fn python_multifernet_tokens_decrypt_in_rust_reporting_the_key() {
    let Some(python) = python_with(&["cryptography"]) else {
        return;
    };
    let (k1, k2) = (generate_key(), generate_key());
    let out = python_json(
        &python,
        r#"
import json, sys
from cryptography.fernet import Fernet, MultiFernet
args = json.loads(sys.argv[1])
f1, f2 = Fernet(args["k1"]), Fernet(args["k2"])
multi = MultiFernet([f2, f1])
print(json.dumps({
    "by_multi": [multi.encrypt(p.encode()).decode() for p in args["plaintexts"]],
    "by_old": [f1.encrypt(p.encode()).decode() for p in args["plaintexts"]],
    "stamped": multi.encrypt_at_time(b"stamped", 1234567890).decode(),
}))
"#,
        &json!({"k1": text(&k1), "k2": text(&k2), "plaintexts": PLAINTEXTS}),
    );
    let encrypter = Encrypter::new(Keyring::new(rotated_set(&k2, &k1)), Derive::Raw).unwrap();
    for (index, plaintext) in PLAINTEXTS.iter().enumerate() {
        let current = encrypter
            .decrypt(out["by_multi"][index].as_str().unwrap(), None)
            .unwrap();
        assert_eq!(current.value, plaintext.as_bytes());
        assert_eq!((&*current.key.id, current.key.role), ("v2", Role::Current));
        let old = encrypter
            .decrypt(
                out["by_old"][index].as_str().unwrap(),
                Some(Duration::from_secs(60)),
            )
            .unwrap();
        assert_eq!(old.value, plaintext.as_bytes());
        assert_eq!((&*old.key.id, old.key.role), ("v1", Role::Fallback));
    }
    let stamped = encrypter.decrypt(out["stamped"].as_str().unwrap(), None).unwrap();
    assert_eq!(
        stamped.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_234_567_890))
    );
}

#[test]
fn rust_tokens_decrypt_in_python_with_ttl_and_timestamps_intact() {
    let Some(python) = python_with(&["cryptography"]) else {
        return;
    };
    let (k1, k2) = (generate_key(), generate_key());
    let encrypter = Encrypter::new(Keyring::new(rotated_set(&k2, &k1)), Derive::Raw).unwrap();
    let tokens: Vec<String> = PLAINTEXTS.iter().map(|p| encrypter.encrypt(p).unwrap()).collect();
    let timestamps: Vec<u64> = tokens
        .iter()
        .map(|t| {
            let ts = encrypter
                .decrypt(t, None)
                .unwrap()
                .timestamp
                .expect("Fernet tokens carry their time");
            ts.duration_since(UNIX_EPOCH).unwrap().as_secs()
        })
        .collect();
    let out = python_json(
        &python,
        r#"
import json, sys, time
from cryptography.fernet import Fernet, MultiFernet, InvalidToken
args = json.loads(sys.argv[1])
# Python's key order differs from the set's on purpose: MultiFernet tries all.
multi = MultiFernet([Fernet(args["k1"]), Fernet(args["k2"])])
only_old = Fernet(args["k1"])
result = {"plain": [], "ts": [], "old_key_refuses": []}
for token in args["tokens"]:
    result["plain"].append(multi.decrypt(token, ttl=60).decode())
    result["ts"].append(multi.extract_timestamp(token))
    try:
        only_old.decrypt(token)
        result["old_key_refuses"].append(False)
    except InvalidToken:
        result["old_key_refuses"].append(True)
print(json.dumps(result))
"#,
        &json!({"k1": text(&k1), "k2": text(&k2), "tokens": tokens}),
    );
    let plain: Vec<&str> = out["plain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(plain, PLAINTEXTS);
    let ts: Vec<u64> = out["ts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ts, timestamps);
    assert!(
        out["old_key_refuses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v == true),
        "encrypted with v2, not v1"
    );
}

#[test]
fn rotation_agrees_with_multifernet_rotate_in_both_directions() {
    let Some(python) = python_with(&["cryptography"]) else {
        return;
    };
    let (k1, k2) = (generate_key(), generate_key());
    let old = Encrypter::new(
        Keyring::new(KeySet::single("v1", k1.clone()).unwrap()),
        Derive::Raw,
    )
    .unwrap();
    let rust_old_token = old.encrypt("rotate me").unwrap();
    let encrypter = Encrypter::new(Keyring::new(rotated_set(&k2, &k1)), Derive::Raw).unwrap();
    let rust_rotated = encrypter.rotate(&rust_old_token).unwrap();
    let out = python_json(
        &python,
        r#"
import json, sys
from cryptography.fernet import Fernet, MultiFernet
args = json.loads(sys.argv[1])
f1, f2 = Fernet(args["k1"]), Fernet(args["k2"])
multi = MultiFernet([f2, f1])
python_old = f1.encrypt_at_time(b"rotated by python", 1600000000)
print(json.dumps({
    "rust_rotated_plain": f2.decrypt(args["rust_rotated"]).decode(),
    "rust_rotated_ts": f2.extract_timestamp(args["rust_rotated"]),
    "rust_old_ts": f1.extract_timestamp(args["rust_old"]),
    "python_rotated": multi.rotate(python_old).decode(),
}))
"#,
        &json!({"k1": text(&k1), "k2": text(&k2), "rust_old": rust_old_token, "rust_rotated": rust_rotated}),
    );
    // Rust's rotate: readable with the new key alone, original timestamp kept.
    assert_eq!(out["rust_rotated_plain"], "rotate me");
    assert_eq!(out["rust_rotated_ts"], out["rust_old_ts"]);
    // Python's rotate: Rust sees the current key and the original timestamp.
    let decrypted = encrypter
        .decrypt(out["python_rotated"].as_str().unwrap(), None)
        .unwrap();
    assert_eq!(decrypted.value, b"rotated by python");
    assert_eq!((&*decrypted.key.id, decrypted.key.role), ("v2", Role::Current));
    assert_eq!(
        decrypted.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_600_000_000))
    );
}

/// Loads django-fernet-fields' `hkdf.py` by path: the package's `__init__`
/// imports `fields.py`, which fails on Django 5 (`force_text` is gone), while
/// `hkdf.py` only needs `cryptography` and `django.utils.encoding.force_bytes`.
const LOAD_FERNET_FIELDS_HKDF: &str = r#"
import importlib.util, os
_location = importlib.util.find_spec("fernet_fields").submodule_search_locations[0]
_spec = importlib.util.spec_from_file_location("fernet_fields_hkdf", os.path.join(_location, "hkdf.py"))
hkdf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hkdf)
"#;

const SECRETS: [&str; 3] = [
    "django-insecure-but-fine-for-a-derivation-test-0123456789",
    "ключ с юникодом и эмодзи 🔑, long enough to be a secret",
    "p@ss/word+with=base64ish/chars==",
];

#[test]
fn hkdf_derivation_matches_django_fernet_fields_byte_for_byte() {
    let Some(python) = python_with(&["cryptography", "django"]) else {
        return;
    };
    let code = format!(
        r#"{LOAD_FERNET_FIELDS_HKDF}
import json, sys
assert hkdf.salt == b"django-fernet-fields-hkdf-salt" and hkdf.info == b"django-fernet-fields"
print(json.dumps([hkdf.derive_fernet_key(s).decode() for s in json.loads(sys.argv[1])]))
"#
    );
    let derived = python_json(&python, &code, &json!(SECRETS));
    for (index, secret) in SECRETS.iter().enumerate() {
        let ours = hkdf_fernet_key(secret.as_bytes());
        assert_eq!(text(&ours), derived[index].as_str().unwrap(), "{secret}");
    }
}

#[test]
fn django_fernet_fields_ciphertexts_decrypt_with_hkdf_keys_and_back() {
    let Some(python) = python_with(&["cryptography", "django"]) else {
        return;
    };
    let (old_secret, new_secret) = (KeyMaterial::from(SECRETS[0]), KeyMaterial::from(SECRETS[1]));
    let encrypter =
        Encrypter::new(Keyring::new(rotated_set(&new_secret, &old_secret)), Derive::Hkdf).unwrap();
    let rust_token = encrypter.encrypt("written by keyroll").unwrap();
    // What fernet_fields' EncryptedField does with FERNET_KEYS = [new, old]:
    // MultiFernet([Fernet(derive_fernet_key(k)) for k in keys]).
    let code = format!(
        r#"{LOAD_FERNET_FIELDS_HKDF}
import json, sys
from cryptography.fernet import Fernet, MultiFernet
args = json.loads(sys.argv[1])
keys = [args["new"], args["old"]]
field_fernet = MultiFernet([Fernet(hkdf.derive_fernet_key(k)) for k in keys])
old_only = Fernet(hkdf.derive_fernet_key(args["old"]))
print(json.dumps({{
    "field_token": field_fernet.encrypt("written by django".encode()).decode(),
    "legacy_token": old_only.encrypt(b"written before the rotation").decode(),
    "rust_plain": field_fernet.decrypt(args["rust_token"].encode()).decode(),
}}))
"#
    );
    let out = python_json(
        &python,
        &code,
        &json!({"new": SECRETS[1], "old": SECRETS[0], "rust_token": rust_token}),
    );
    assert_eq!(out["rust_plain"], "written by keyroll");
    let field = encrypter
        .decrypt(out["field_token"].as_str().unwrap(), None)
        .unwrap();
    assert_eq!(field.value, b"written by django");
    assert_eq!(&*field.key.id, "v2");
    let legacy = encrypter
        .decrypt(out["legacy_token"].as_str().unwrap(), None)
        .unwrap();
    assert_eq!(legacy.value, b"written before the rotation");
    assert_eq!((&*legacy.key.id, legacy.key.role), ("v1", Role::Fallback));
}
