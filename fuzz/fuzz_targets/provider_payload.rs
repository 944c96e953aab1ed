//! What turns a store's answer into key material, without a live store:
//! AWS `GetSecretValue` (`SecretString` or `SecretBinary`, the `?field=` JSON
//! selection: `keyroll_aws::fuzzing`) and GCP `AccessSecretVersion` (the
//! payload and its `dataCrc32c`: `keyroll_gcp::fuzzing`) and Vault KV v2
//! reads (the version's fields and metadata: `keyroll_vault::fuzzing`). The
//! wrappers call the very functions the providers' `fetch` uses.
//!
//! Oracles: `serde_json` for the JSON field, the `crc32c` crate for
//! checksums, the `base64` crate for the REST payload, times the target
//! formats itself for Vault's metadata. Every store has one
//! variant of [`Case`]; add a variant (and its `check_*` function) for
//! another store.

#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyroll_aws::fuzzing as aws;
use keyroll_core::{FirstSeen, KeyMaterial, KeyState, KeyVersion, Policy, ProviderError, ProviderErrorKind};
use keyroll_gcp::fuzzing as gcp;
use keyroll_vault::fuzzing as vault;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One input: which store's answer, and how it is made.
#[derive(Debug, Arbitrary)]
enum Case {
    Aws(AwsCase),
    Gcp(GcpCase),
    Vault(VaultCase),
    Times(TimesCase),
}

/// The times in store answers (AWS `CreatedDate` as a JSON number, GCP
/// `createTime`, Vault's `created_time` and token TTLs), run through the
/// policy with any settings: nothing may panic.
#[derive(Debug, Arbitrary)]
struct TimesCase {
    aws_created: f64,
    gcp_seconds: i64,
    gcp_nanos: i32,
    vault_created: Moment,
    vault_ttl: u64,
    activation_secs: u64,
    window_secs: u64,
    max_fallbacks: u8,
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

#[derive(Debug, Arbitrary)]
enum VaultCase {
    /// Arbitrary text as the read answer, read with an arbitrary field.
    Json { text: String, field: String },
    /// A well-formed answer: arbitrary fields and metadata.
    Answer {
        entries: Vec<(String, Leaf)>,
        field: Pick,
        /// The version's data is a JSON object of the entries, else `null`
        /// (as for a deleted version) or an array of their values.
        data: DataShape,
        version: u64,
        created: Moment,
        deletion: Moment,
        destroyed: bool,
    },
}

#[derive(Debug, Arbitrary)]
enum DataShape {
    Object,
    Null,
    Array,
}

/// A `created_time` or `deletion_time`.
#[derive(Debug, Arbitrary)]
enum Moment {
    /// `""`: none.
    Empty,
    /// RFC 3339 from seconds since 1970 (up to year 9999) and nanoseconds.
    At(u64, u32),
    /// Arbitrary text.
    Text(String),
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

/// The text Vault would send for `moment`, and the instant it means (the
/// target's own formatting, or `time`'s reading of arbitrary text).
fn moment_text(moment: Moment) -> (String, Option<SystemTime>) {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    match moment {
        Moment::Empty => (String::new(), None),
        Moment::At(seconds, nanos) => {
            let seconds = seconds % 253_402_300_800;
            let at = time::OffsetDateTime::from_unix_timestamp(seconds as i64).expect("in range")
                + time::Duration::nanoseconds(i64::from(nanos % 1_000_000_000));
            let text = at.format(rfc3339).expect("formats");
            (
                text,
                Some(UNIX_EPOCH + Duration::new(seconds, nanos % 1_000_000_000)),
            )
        }
        Moment::Text(text) => {
            let at = time::OffsetDateTime::parse(&text, rfc3339)
                .ok()
                .map(SystemTime::from);
            (text, at)
        }
    }
}

/// Checks `newest_version` on an answer whose JSON the target built, with
/// every verdict known in advance.
fn check_vault_answer(case: VaultCase) {
    let VaultCase::Answer {
        entries,
        field,
        data,
        version,
        created,
        deletion,
        destroyed,
    } = case
    else {
        unreachable!("called for answers only")
    };
    let field = match field {
        Pick::Entry(n) if !entries.is_empty() => entries[usize::from(n) % entries.len()].0.clone(),
        Pick::Entry(_) => "key".to_owned(),
        Pick::Other(name) => name,
    };
    let object: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, leaf_value(v))).collect();
    let data = match data {
        DataShape::Object => Value::Object(object),
        DataShape::Null => Value::Null,
        DataShape::Array => Value::Array(object.into_iter().map(|(_, v)| v).collect()),
    };
    let (created_text, created_at) = moment_text(created);
    let (deletion_text, deleted_at) = moment_text(deletion);
    let answer = json!({
        "data": data,
        "metadata": {
            "created_time": created_text,
            "custom_metadata": null,
            "deletion_time": deletion_text,
            "destroyed": destroyed,
            "version": version,
        }
    });
    let (mut candidates, mut names) = (Vec::new(), vec![field.clone()]);
    strings_of(&answer["data"], &mut candidates, &mut names);

    let before = SystemTime::now();
    let result = vault::newest_version(answer.to_string().as_bytes(), &field);
    let after = SystemTime::now();
    if deleted_at.is_some_and(|at| at > before && at <= after) {
        return; // deleted during the call: either verdict is right
    }
    let deleted = destroyed || deleted_at.is_some_and(|at| at <= before);
    let key = match &answer["data"] {
        Value::Object(fields) => fields
            .get(&field)
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty()),
        _ => None,
    };
    match (result, deleted, key) {
        (Ok(None), true, _) => {}
        (Ok(Some(reported)), false, Some(key)) => {
            assert_eq!(reported.id, version.to_string());
            assert_eq!(reported.state, KeyState::Enabled);
            assert_eq!(reported.created, created_at);
            assert_eq!(reported.expires, deleted_at);
            assert_material(&reported.material, key.as_bytes(), &candidates);
            assert_no_leak(&format!("{reported:?}"), &candidates, &names);
        }
        (Err(error), false, None) => assert_error_hides(&error, &candidates, &names),
        (result, deleted, key) => panic!(
            "newest_version gave {:?} for a version {} with {}",
            result.map(|v| v.map(|v| v.id)),
            if deleted {
                "deleted or destroyed"
            } else {
                "enabled"
            },
            if key.is_some() {
                "a key in the field"
            } else {
                "no key in the field"
            }
        ),
    }
}

fn vault_case(case: VaultCase) {
    match case {
        VaultCase::Json { text, field } => {
            let (mut candidates, mut names) = (Vec::new(), vec![field.clone()]);
            match serde_json::from_str::<Value>(&text) {
                Ok(doc) => strings_of(&doc, &mut candidates, &mut names),
                Err(_) => tokens(&text, &mut candidates),
            }
            match vault::newest_version(text.as_bytes(), &field) {
                Ok(Some(reported)) => {
                    // A reported key is the field's string, with the version's number.
                    let doc: Value = serde_json::from_str(&text).expect("it was parsed, so it is JSON");
                    let key = doc["data"][field.as_str()]
                        .as_str()
                        .expect("the field is a string");
                    assert!(!key.is_empty());
                    assert_eq!(reported.id, doc["metadata"]["version"].to_string());
                    assert_material(&reported.material, key.as_bytes(), &candidates);
                }
                Ok(None) => {
                    let doc: Value = serde_json::from_str(&text).expect("it was parsed, so it is JSON");
                    let meta = &doc["metadata"];
                    assert!(
                        meta["destroyed"] == Value::Bool(true) || meta["deletion_time"] != json!(""),
                        "only a deleted or destroyed version is left out"
                    );
                }
                Err(error) => assert_error_hides(&error, &candidates, &names),
            }
        }
        answer => check_vault_answer(answer),
    }
}

/// Checks that store times of any size, under any policy settings, give a
/// key set or a typed refusal, and token TTLs of any size a deadline or none.
fn times_case(case: TimesCase) {
    let now = SystemTime::now();
    let mut versions = Vec::new();
    let created = [
        aws::created_date(case.aws_created),
        gcp::create_time(case.gcp_seconds, case.gcp_nanos),
        moment_text(case.vault_created).1,
    ];
    for (i, created) in created.into_iter().enumerate() {
        let mut version = KeyVersion::new(format!("v{i}"), format!("times-key-{i}-0123456789abcdefghijklmnopqrstuv"));
        if let Some(at) = created {
            version = version.with_created(at);
        }
        versions.push(version);
    }
    let policy = Policy::default()
        .with_activation_delay(Duration::from_secs(case.activation_secs))
        .with_fallback_window(Duration::from_secs(case.window_secs))
        .with_max_fallbacks(usize::from(case.max_fallbacks));
    // Newest first, as providers report.
    versions.sort_by_key(|v| std::cmp::Reverse(v.created));
    if let Ok(set) = policy.evaluate(&versions, &FirstSeen::new(), now) {
        assert!(versions.iter().any(|v| v.id == set.signing_key().id()));
        let _ = set.next_transition_after(now);
    }
    let (expires, renew) = vault::lease_times(case.vault_ttl);
    if let (Some(expires), Some(renew)) = (expires, renew) {
        assert!(renew <= expires, "renewal {renew:?} after expiry {expires:?}");
    }
}

fuzz_target!(|case: Case| {
    match case {
        Case::Aws(case) => aws_case(case),
        Case::Gcp(case) => gcp_case(case),
        Case::Vault(case) => vault_case(case),
        Case::Times(case) => times_case(case),
    }
});
