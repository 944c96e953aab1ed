//! What turns a store's answer into key material, without a live store:
//! AWS `GetSecretValue` (`SecretString` or `SecretBinary`, the `?field=` JSON
//! selection: `keyroll_aws::fuzzing`) and GCP `AccessSecretVersion` (the
//! payload and its `dataCrc32c`: `keyroll_gcp::fuzzing`). The wrappers call
//! the very functions the providers' `fetch` uses.
//!
//! Oracles: `serde_json` for the JSON field, the `crc32c` crate for
//! checksums, the `base64` crate for the REST payload. Every store has one
//! variant of [`Case`]; add a variant (and its `check_*` function) for
//! another store.

#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyroll_aws::fuzzing as aws;
use keyroll_core::{KeyMaterial, ProviderError, ProviderErrorKind};
use keyroll_gcp::fuzzing as gcp;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// One input: which store's answer, and how it is made.
#[derive(Debug, Arbitrary)]
enum Case {
    Aws(AwsCase),
    Gcp(GcpCase),
    // Vault: added by the lead.
}

#[derive(Debug, Arbitrary)]
enum AwsCase {
    /// An arbitrary answer: a secret string, a binary, both or neither, read
    /// with or without a field.
    Answer {
        string: Option<String>,
        binary: Option<Vec<u8>>,
        field: Option<String>,
    },
    /// A JSON object secret string from arbitrary entries, read with the name
    /// of one of them or another name (reaches the field selection far more
    /// often than arbitrary text).
    Object {
        entries: Vec<(String, Leaf)>,
        field: Pick,
        binary: Option<Vec<u8>>,
    },
}

/// A value of a JSON object secret.
#[derive(Debug, Arbitrary)]
enum Leaf {
    Text(String),
    Integer(i64),
    Bool(bool),
    Null,
    List(Vec<String>),
    Object(Vec<(String, String)>),
}

/// The field asked for.
#[derive(Debug, Arbitrary)]
enum Pick {
    /// The name of entry `n` (modulo the number of entries).
    Entry(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum GcpCase {
    /// Arbitrary text as the REST answer.
    Json(String),
    /// A well-formed REST answer around arbitrary data.
    Answer {
        name: String,
        data: Vec<u8>,
        crc: Crc,
        /// `dataCrc32c` as a JSON number instead of the int64-as-string.
        crc_as_number: bool,
        shape: Shape,
    },
}

#[derive(Debug, Arbitrary)]
enum Crc {
    Right,
    /// Any int64 (the right one only by chance; the oracle decides).
    Other(i64),
    /// The right low 32 bits in a wider int64.
    Wider(u32),
    Missing,
}

#[derive(Debug, Arbitrary)]
enum Shape {
    Full,
    /// `payload` with `dataCrc32c` only: empty data.
    NoData,
    /// No `payload` at all: an empty key, no checksum.
    NoPayload,
}

/// The (fixed, plain) names the errors may carry.
const SECRET_ID: &str = "fuzz/app-key";
const VERSION_ID: &str = "fuzz-version-1";
const GCP_VERSION: &str = "projects/fuzz/secrets/app-key/versions/1";

/// A string that could be a key: long enough, and holding a character no
/// fixed message text, number or name contains, so finding it in a message
/// means it leaked.
fn secret_like(text: &str) -> bool {
    text.chars().count() >= 8 && text.chars().any(|c| c == '~' || !c.is_ascii())
}

/// Characters that separate the parts of a message (and JSON syntax), so a
/// token of the input never spans two things a message puts side by side.
fn separator(c: char) -> bool {
    c.is_whitespace() || "\"{}[],:\\`();".contains(c)
}

/// The key-like tokens of `text`.
fn tokens(text: &str, out: &mut Vec<String>) {
    out.extend(
        text.split(separator)
            .filter(|t| secret_like(t))
            .map(str::to_owned),
    );
}

/// Every string value of a JSON document (tokenised into `out`) and every
/// object key (whole, into `names`: messages may name fields).
fn strings_of(value: &Value, out: &mut Vec<String>, names: &mut Vec<String>) {
    match value {
        Value::String(s) => tokens(s, out),
        Value::Array(items) => items.iter().for_each(|v| strings_of(v, out, names)),
        Value::Object(map) => {
            for (k, v) in map {
                names.push(k.clone());
                strings_of(v, out, names);
            }
        }
        _ => {}
    }
}

/// No candidate that is not part of a name (as is, or as `Debug` escapes
/// it) appears in `shown`.
fn assert_no_leak(shown: &str, candidates: &[String], names: &[String]) {
    for secret in candidates {
        if names
            .iter()
            .any(|n| n.contains(secret.as_str()) || n.escape_debug().to_string().contains(secret.as_str()))
        {
            continue;
        }
        assert!(
            !shown.contains(secret.as_str()),
            "{secret:?} leaked into {shown:?}"
        );
    }
}

fn assert_error_hides(error: &ProviderError, candidates: &[String], names: &[String]) {
    assert_eq!(error.kind(), ProviderErrorKind::Invalid, "{error}");
    assert_no_leak(&error.to_string(), candidates, names);
    assert_no_leak(&format!("{error:?}"), candidates, names);
}

fn assert_material(material: &KeyMaterial, expected: &[u8], candidates: &[String]) {
    assert_eq!(material.expose_secret(), expected);
    assert_no_leak(&format!("{material:?}"), candidates, &[]);
}

/// The oracle for `json_field`: the string in `field` of the JSON object `text`.
fn json_oracle(text: &str, field: &str) -> Option<String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut map)) => match map.remove(field) {
            Some(Value::String(key)) => Some(key),
            _ => None,
        },
        _ => None,
    }
}

/// The oracle for `material_of`: the string wins over the binary, a field
/// is read from the string only, and a key is never empty.
fn aws_oracle(string: Option<&str>, binary: Option<&[u8]>, field: Option<&str>) -> Option<Vec<u8>> {
    let key = match (field, string, binary) {
        (None, Some(string), _) => Some(string.as_bytes().to_vec()),
        (None, None, Some(binary)) => Some(binary.to_vec()),
        (Some(field), Some(string), _) => json_oracle(string, field).map(String::into_bytes),
        _ => None,
    };
    key.filter(|k| !k.is_empty())
}

fn check_aws(string: Option<&str>, binary: Option<&[u8]>, field: Option<&str>) {
    let mut candidates = Vec::new();
    let mut names: Vec<String> = field.into_iter().map(str::to_owned).collect();
    if let Some(string) = string {
        // JSON: its strings unescaped (a raw token could hold half an escape).
        match serde_json::from_str::<Value>(string) {
            Ok(doc) => strings_of(&doc, &mut candidates, &mut names),
            Err(_) => tokens(string, &mut candidates),
        }
    }
    if let Some(binary) = binary {
        tokens(&String::from_utf8_lossy(binary), &mut candidates);
    }

    if let (Some(string), Some(field)) = (string, field) {
        match (aws::json_field(string, field), json_oracle(string, field)) {
            (Ok(key), Some(expected)) => assert_material(&key, expected.as_bytes(), &candidates),
            (Err(problem), None) => assert_no_leak(&problem, &candidates, &names),
            (Ok(_), None) => panic!("json_field found a string where serde_json finds none"),
            (Err(problem), Some(_)) => {
                panic!("json_field failed where serde_json finds the string: {problem}")
            }
        }
    }

    let result = aws::material_of(SECRET_ID, VERSION_ID, field, string, binary);
    match (result, aws_oracle(string, binary, field)) {
        (Ok(key), Some(expected)) => assert_material(&key, &expected, &candidates),
        (Err(error), None) => assert_error_hides(&error, &candidates, &names),
        (Ok(_), None) => panic!("material_of accepted an answer without a key"),
        (Err(error), Some(_)) => panic!("material_of refused an answer with a key: {error}"),
    }
}

fn leaf_value(leaf: Leaf) -> Value {
    match leaf {
        Leaf::Text(s) => Value::String(s),
        Leaf::Integer(n) => json!(n),
        Leaf::Bool(b) => Value::Bool(b),
        Leaf::Null => Value::Null,
        Leaf::List(items) => Value::Array(items.into_iter().map(Value::String).collect()),
        Leaf::Object(entries) => {
            Value::Object(entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
        }
    }
}

fn aws_case(case: AwsCase) {
    match case {
        AwsCase::Answer {
            string,
            binary,
            field,
        } => {
            check_aws(string.as_deref(), binary.as_deref(), field.as_deref());
        }
        AwsCase::Object {
            entries,
            field,
            binary,
        } => {
            let field = match field {
                Pick::Entry(n) if !entries.is_empty() => entries[usize::from(n) % entries.len()].0.clone(),
                Pick::Entry(_) => "key".to_owned(),
                Pick::Other(name) => name,
            };
            let object: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, leaf_value(v))).collect();
            let text = Value::Object(object).to_string();
            check_aws(Some(&text), binary.as_deref(), Some(&field));
        }
    }
}

/// Checks `payload_material` on an answer the client parsed: the data is
/// the key exactly when the checksum is missing or is the data's CRC-32C.
/// `text` is the JSON the answer came from.
fn check_gcp(text: &str, response: gcp::AccessSecretVersionResponse) {
    let payload = response.payload.clone();
    let data = payload.as_ref().map(|p| p.data.to_vec()).unwrap_or_default();
    let crc = payload.as_ref().and_then(|p| p.data_crc32c);

    // The client decoded what the REST text says (when our decoder reads it too).
    let doc: Value = serde_json::from_str(text).expect("the client parsed it, so it is JSON");
    if let Some(encoded) = doc["payload"]["data"].as_str()
        && let Ok(decoded) = STANDARD.decode(encoded)
    {
        assert_eq!(decoded, data, "the client decoded the payload differently");
    }
    if let Some(Ok(crc_text)) = doc["payload"]["dataCrc32c"].as_str().map(str::parse::<i64>) {
        assert_eq!(Some(crc_text), crc, "the client read dataCrc32c differently");
    }

    let mut candidates = Vec::new();
    tokens(text, &mut candidates);
    tokens(&String::from_utf8_lossy(&data), &mut candidates);
    let right = i64::from(crc32c::crc32c(&data));
    let accepted = crc.is_none_or(|crc| crc == right);
    match gcp::payload_material(GCP_VERSION, response) {
        Ok(key) => {
            assert!(accepted, "accepted dataCrc32c {crc:?}, the data's is {right}");
            assert_material(&key, &data, &candidates);
        }
        Err(error) => {
            assert!(
                !accepted,
                "refused a payload whose dataCrc32c is {crc:?}: {error}"
            );
            assert_error_hides(&error, &candidates, &[]);
        }
    }
}

fn gcp_case(case: GcpCase) {
    match case {
        GcpCase::Json(text) => {
            if let Ok(response) = serde_json::from_str::<gcp::AccessSecretVersionResponse>(&text) {
                check_gcp(&text, response);
            }
        }
        GcpCase::Answer {
            name,
            data,
            crc,
            crc_as_number,
            shape,
        } => {
            let right = crc32c::crc32c(&data);
            let crc = match crc {
                Crc::Right => Some(i64::from(right)),
                Crc::Other(n) => Some(n),
                Crc::Wider(high) => Some(i64::from(right) | (i64::from(high.max(1)) << 32)),
                Crc::Missing => None,
            };
            let mut payload = Map::new();
            if !matches!(shape, Shape::NoData) {
                payload.insert("data".into(), Value::String(STANDARD.encode(&data)));
            }
            if let Some(crc) = crc {
                let crc = if crc_as_number {
                    json!(crc)
                } else {
                    json!(crc.to_string())
                };
                payload.insert("dataCrc32c".into(), crc);
            }
            let mut answer = json!({ "name": name });
            if !matches!(shape, Shape::NoPayload) {
                answer["payload"] = Value::Object(payload);
            }
            let text = answer.to_string();
            let response = serde_json::from_str::<gcp::AccessSecretVersionResponse>(&text)
                .unwrap_or_else(|e| panic!("the client refused a well-formed answer {text}: {e}"));
            check_gcp(&text, response);
        }
    }
}

fuzz_target!(|case: Case| {
    match case {
        Case::Aws(case) => aws_case(case),
        Case::Gcp(case) => gcp_case(case),
    }
});
