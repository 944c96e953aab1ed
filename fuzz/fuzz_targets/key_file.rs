//! Key-set parsers of keyroll-file (`keyroll_file::parse`, `Format::parse`):
//! the plain-text and JSON key files. A Docker secret's body is read by the
//! same parser (keyroll-docker reads each secret with keyroll-file), so this
//! target covers the Docker secret form too.

#![no_main]

use std::time::SystemTime;

use base64::Engine;
use keyroll_core::{KeyState, KeyVersion};
use keyroll_file::{Format, ParseError, parse};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A string of the input that could be a key: long enough and holding a
/// character no fixed message text, number or schema word contains, so
/// finding it in a message means it leaked.
fn secret_like(text: &str) -> bool {
    text.chars().count() >= 8 && text.chars().any(|c| c == '~' || (!c.is_ascii() && c != '…'))
}

/// Every string value of a JSON document, except the entries' ids (which
/// messages may name), and every object key.
fn candidates(value: &Value, under_entry_id: bool, out: &mut Vec<String>, ids: &mut Vec<String>) {
    match value {
        Value::String(s) if under_entry_id => ids.push(s.clone()),
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| candidates(v, false, out, ids)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                candidates(v, k == "id", out, ids);
            }
        }
        _ => {}
    }
}

fn assert_no_leak(shown: &str, secrets: &[String], ids: &[String]) {
    for secret in secrets.iter().filter(|s| secret_like(s)) {
        if ids.iter().any(|id| id.contains(secret.as_str())) {
            continue;
        }
        assert!(
            !shown.contains(secret.as_str()),
            "{secret:?} leaked into {shown:?}"
        );
    }
}

fn rfc3339(at: Option<SystemTime>) -> Option<Option<String>> {
    match at {
        None => Some(None),
        Some(at) => OffsetDateTime::from(at).format(&Rfc3339).ok().map(Some),
    }
}

/// Writes `versions` as a JSON key file (all fields, binary keys as base64),
/// independently of keyroll-file's writer.
fn to_json(versions: &[KeyVersion]) -> Option<Vec<u8>> {
    let mut keys = Vec::new();
    for v in versions {
        let mut entry = json!({
            "id": v.id,
            "key_base64": base64::engine::general_purpose::STANDARD.encode(v.material.expose_secret()),
            "state": match v.state {
                KeyState::Enabled => "enabled",
                KeyState::Disabled => "disabled",
                KeyState::Destroyed => "destroyed",
                _ => return None,
            },
        });
        for (name, at) in [
            ("created", v.created),
            ("activates", v.activates),
            ("expires", v.expires),
        ] {
            if let Some(text) = rfc3339(at)? {
                entry[name] = Value::String(text);
            }
        }
        keys.push(entry);
    }
    serde_json::to_vec(&json!({ "keys": keys })).ok()
}

fn same(a: &[KeyVersion], b: &[KeyVersion]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            a.id == b.id
                && a.material.expose_secret() == b.material.expose_secret()
                && a.state == b.state
                && a.created == b.created
                && a.activates == b.activates
                && a.expires == b.expires
        })
}

fn check_text(data: &[u8], result: &Result<Vec<KeyVersion>, ParseError>) {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    match result {
        Ok(versions) => {
            let expected: Vec<&str> = lines
                .iter()
                .map(|l| std::str::from_utf8(l).expect("parsed, so UTF-8").trim())
                .filter(|k| !k.is_empty() && !k.starts_with('#'))
                .collect();
            assert_eq!(versions.len(), expected.len());
            for (v, key) in versions.iter().zip(expected) {
                assert_eq!(v.material.expose_secret(), key.as_bytes());
                assert_eq!(v.id, v.material.fingerprint());
                assert_eq!(v.state, KeyState::Enabled);
                let shown = format!("{v:?}");
                if secret_like(key) && !v.id.contains(key) {
                    assert!(!shown.contains(key), "key leaked into Debug: {shown}");
                }
            }
        }
        Err(ParseError::NotUtf8 { line }) => {
            assert!(
                std::str::from_utf8(lines[line - 1]).is_err(),
                "line {line} is UTF-8"
            );
            assert!(lines[..line - 1].iter().all(|l| std::str::from_utf8(l).is_ok()));
        }
        Err(ParseError::Empty) => {
            assert!(lines.iter().all(|l| {
                let t = String::from_utf8_lossy(l);
                let t = t.trim();
                t.is_empty() || t.starts_with('#')
            }));
        }
        Err(other) => panic!("plain text cannot fail with {other:?}"),
    }
}

fn check_json(data: &[u8], result: &Result<Vec<KeyVersion>, ParseError>) {
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    if let Ok(doc) = serde_json::from_slice::<Value>(data) {
        candidates(&doc, false, &mut secrets, &mut ids);
    }
    match result {
        Ok(versions) => {
            assert!(!versions.is_empty());
            for (i, v) in versions.iter().enumerate() {
                // Only a withdrawn (disabled, destroyed) entry may have no key.
                assert!(!v.material.is_empty() || v.state != KeyState::Enabled);
                assert!(!v.id.trim().is_empty());
                assert!(
                    versions[..i].iter().all(|w| w.id != v.id),
                    "duplicate id {:?}",
                    v.id
                );
                if let (Some(newer), Some(created)) =
                    (i.checked_sub(1).and_then(|j| versions[j].created), v.created)
                {
                    assert!(created <= newer, "entries out of order");
                }
            }
            assert_no_leak(&format!("{versions:?}"), &secrets, &ids);
            // Round trip through an independent writer.
            if let Some(written) = to_json(versions) {
                let again = Format::Json
                    .parse(&written)
                    .unwrap_or_else(|e| panic!("re-reading our own key file failed: {e}"));
                assert!(same(versions, &again), "round trip changed the key set");
            }
        }
        Err(error) => {
            assert_no_leak(&error.to_string(), &secrets, &ids);
            assert_no_leak(&format!("{error:?}"), &secrets, &ids);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let detected = Format::detect(data);
    let auto = parse(data, None);
    let text = Format::Text.parse(data);
    let json = Format::Json.parse(data);
    let by_detection = if detected == Format::Json { &json } else { &text };
    assert_eq!(auto.as_ref().map(Vec::len), by_detection.as_ref().map(Vec::len));
    check_text(data, &text);
    check_json(data, &json);
});
