use super::*;

const KEY: &str = "first-key-0123456789abcdefghijklmnopqrstuvwxyz";

#[test]
fn json_is_detected_by_its_opening_brace() {
    assert_eq!(Format::detect(b"  \n {\"keys\": []}"), Format::Json);
    assert_eq!(Format::detect(b"# keys\nabc"), Format::Text);
    assert_eq!(Format::detect(b""), Format::Text);
}

#[test]
fn json_errors_hide_misplaced_key_text() {
    let err = parse(format!(r#"{{"keys": ["{KEY}"]}}"#).as_bytes(), None).unwrap_err();
    let shown = err.to_string();
    assert!(!shown.contains(KEY), "{shown}");
    assert!(matches!(err, ParseError::Json { line: 1, .. }), "{err:?}");
}

#[test]
fn json_errors_name_the_schema_fields() {
    let err = parse(br#"{"keys": [{"key": "x", "colour": "blue"}]}"#, None).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::Json {
                problem: JsonProblem::Schema,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("`key_base64`"), "{err}");
    assert!(!err.to_string().contains("colour"), "{err}");
}

/// serde quotes strings with `{:?}`, so a key with an escaped quote or a
/// unicode escape defeated the old scanning of its message.
#[test]
fn json_errors_hide_key_text_with_escaped_quotes_and_unicode_escapes() {
    let secrets = [
        r#"se\"cret-\"key\" 0123456789 abcdefghijklmnop"#,
        r#"secret\u0022 quoted\u0060key-0123456789abcdef"#,
        r#"\u00e9t\u00e9-cl\u00e9 0123456789abcdefghijkl"#,
        r#"back\\slash\\\"key-0123456789abcdefghijklmno"#,
    ];
    for secret in secrets {
        let decoded: String = serde_json::from_str(&format!("\"{secret}\"")).unwrap();
        let fragments: Vec<&str> = decoded.split(['"', '`', '\\']).filter(|f| f.len() >= 4).collect();
        for file in [
            format!(r#"{{"keys": ["{secret}"]}}"#),
            format!(r#"{{"keys": [{{"key": "{secret}", "state": "{secret}"}}]}}"#),
            format!(r#"{{"keys": [{{"key": 1, "{secret}": "x"}}]}}"#),
            format!(r#"{{"keys": [{{"id": "{secret}", "created": "{secret}"}}]}}"#),
            format!(r#"{{"{secret}": []}}"#),
        ] {
            let err = parse(file.as_bytes(), Some(Format::Json)).unwrap_err();
            let shown = format!("{err} {err:?}");
            for fragment in fragments.iter().chain([&secret]) {
                assert!(!shown.contains(fragment), "{fragment:?} leaked: {shown}");
            }
        }
    }
}

#[test]
fn a_written_key_file_reads_back_as_the_store_reported_it() {
    use std::time::{Duration, UNIX_EPOCH};
    let created = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let versions = vec![
        KeyVersion::new("v3", vec![0xff, 0x00, 0x01])
            .with_created(created)
            .with_stage(Stage::Pending),
        KeyVersion::new("v2", KEY)
            .with_created(created)
            .with_stage(Stage::Current),
        KeyVersion::new("v1", KEY.to_uppercase()).with_state(KeyState::Disabled),
    ];
    let contents = key_file_json(&versions, Reach::Shared).unwrap();
    assert_eq!(declared_reach(&contents), Some(Reach::Shared));
    let read = parse(&contents, None).unwrap();
    assert_eq!(read.len(), 3);
    for (read, written) in read.iter().zip(&versions) {
        assert_eq!(read.id, written.id);
        assert_eq!(
            (read.created, read.state, read.stage),
            (written.created, written.state, written.stage)
        );
    }
    for (read, written) in read.iter().zip(&versions).take(2) {
        assert_eq!(read.material.expose_secret(), written.material.expose_secret());
    }
    assert!(
        read[2].material.is_empty(),
        "a withdrawn version is written without material"
    );
    assert!(!String::from_utf8_lossy(&contents).contains(&KEY.to_uppercase()));
    assert_eq!(
        declared_reach(KEY.as_bytes()),
        None,
        "plain text declares nothing"
    );
    assert_eq!(
        declared_reach(&key_file_json(&versions, Reach::Local).unwrap()),
        Some(Reach::Local)
    );
}

/// Issue 24 item 3: Vault and GCP report a deleted, disabled or
/// destroyed version with no material; the agent wrote it as `"key": ""`
/// and every reader refused the whole file.
#[test]
fn a_withdrawn_version_without_material_is_written_and_read_by_id_and_state() {
    let versions = vec![
        KeyVersion::new("3", KEY),
        KeyVersion::new("2", Vec::new()).with_state(KeyState::Disabled),
        KeyVersion::new("1", Vec::new()).with_state(KeyState::Destroyed),
    ];
    let contents = key_file_json(&versions, Reach::Shared).unwrap();
    let file: serde_json::Value = serde_json::from_slice(&contents).unwrap();
    assert_eq!(
        file["keys"][1],
        serde_json::json!({"id": "2", "state": "disabled"})
    );
    assert_eq!(
        file["keys"][2],
        serde_json::json!({"id": "1", "state": "destroyed"})
    );
    let read = parse(&contents, None).unwrap();
    let states: Vec<_> = read
        .iter()
        .map(|v| (v.id.as_str(), v.state, v.material.len()))
        .collect();
    assert_eq!(
        states,
        [
            ("3", KeyState::Enabled, KEY.len()),
            ("2", KeyState::Disabled, 0),
            ("1", KeyState::Destroyed, 0)
        ]
    );
    // What earlier agents wrote reads too.
    let old = br#"{"keys": [{"id": "2", "key": "k3y-0123456789abcdefghijklmnopqrstuvwxyz"}, {"id": "1", "key": "", "state": "disabled"}]}"#;
    assert_eq!(parse(old, None).unwrap()[1].state, KeyState::Disabled);
    // An enabled entry still needs material, a withdrawn one an id.
    for (file, problem) in [
        (r#"{"keys": [{"id": "1"}]}"#, EntryProblem::KeyField),
        (r#"{"keys": [{"id": "1", "key": ""}]}"#, EntryProblem::EmptyKey),
        (
            r#"{"keys": [{"state": "disabled"}]}"#,
            EntryProblem::WithdrawnWithoutId,
        ),
    ] {
        let err = parse(file.as_bytes(), None).unwrap_err();
        assert!(
            matches!(&err, ParseError::Entry { problem: p, .. } if *p == problem),
            "{file}: {err:?}"
        );
    }
}

/// Issue 24 item 5: `OffsetDateTime::from(SystemTime)` panicked on a
/// store time past year 9999.
#[test]
fn a_time_a_key_file_cannot_hold_is_an_error_not_a_panic() {
    use std::time::{Duration, UNIX_EPOCH};
    let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_387_200);
    let far = [
        year_10000,
        UNIX_EPOCH + Duration::from_secs(1 << 62),
        UNIX_EPOCH - Duration::from_secs(62_200_000_000),
    ];
    for at in far {
        for version in [
            KeyVersion::new("v1", KEY).with_created(at),
            KeyVersion::new("v1", KEY).with_activates(at),
            KeyVersion::new("v1", KEY).with_expires(at),
        ] {
            let err = key_file_json(&[version], Reach::Shared).unwrap_err();
            assert!(
                matches!(&err, KeyFileError::TimeOutOfRange { id, .. } if id == "v1"),
                "{err:?}"
            );
            assert!(err.to_string().contains("beyond year 9999"), "{err}");
        }
    }
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    let contents = key_file_json(&[KeyVersion::new("v1", KEY).with_created(last)], Reach::Shared).unwrap();
    assert_eq!(parse(&contents, None).unwrap()[0].created, Some(last));
}

#[test]
fn a_file_marked_unavailable_fails_to_parse_with_the_moment() {
    let file = format!(
        r#"{{"unavailable_since": "2026-12-03T08:00:00Z", "keys": [{{"id": "1", "key": "{KEY}"}}]}}"#
    );
    let err = parse(file.as_bytes(), None).unwrap_err();
    assert!(matches!(err, ParseError::StoreUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("since 2026-12-03T08:00:00Z"), "{err}");
    assert!(!err.to_string().contains(KEY), "{err}");
}

#[test]
fn base64_accepts_both_alphabets_with_or_without_padding() {
    assert_eq!(decode_base64("+/8=").unwrap(), vec![0xfb, 0xff]);
    assert_eq!(decode_base64("-_8").unwrap(), vec![0xfb, 0xff]);
    assert!(decode_base64("not base64!").is_none());
}
