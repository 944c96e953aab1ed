//! The public Fernet spec vectors (`fernet/spec`: generate.json, verify.json,
//! invalid.json), embedded verbatim.
//!
//! invalid.json is the current upstream file: the 8 cases of the spec
//! (REFERENCES §7.1) plus 3 base64 cases added upstream later (trailing data
//! after the padding, stray characters, the non-url-safe `+/` alphabet).
//! Python `cryptography` 48 accepts two of those three (its base64 decoder
//! skips characters outside the alphabet); keyroll follows the spec and
//! refuses all of them. Tokens either side emits are canonical, so this never
//! affects interop.

use std::cell::Cell;
use std::time::{Duration, SystemTime};

use keyroll_core::{KeyMaterial, KeySet, Keyring};
use keyroll_fernet::{DecryptError, Derive, Encrypter, FernetKey};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const GENERATE: &str = r#"[
  {
    "token": "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
    "now": "1985-10-26T01:20:00-07:00",
    "iv": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    "src": "hello",
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  }
]"#;

const VERIFY: &str = r#"[
  {
    "token": "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "src": "hello",
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  }
]"#;

const INVALID: &str = r#"[
  {
    "desc": "incorrect mac",
    "token": "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "too short",
    "token": "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "invalid base64",
    "token": "%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "payload size not multiple of block size",
    "token": "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "payload padding error",
    "token": "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "far-future TS (unacceptable clock skew)",
    "token": "gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "expired TTL",
    "token": "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==",
    "now": "1985-10-26T01:21:31-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "incorrect IV (causes padding error)",
    "token": "gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "trailing characters after b64 padding",
    "token": "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==trailingdata",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "invalid characters in b64",
    "token": "*gAAAAAAdwJ6wAAECAwQFBgcI!CQoLDA0ODy021?cpGVWKZ_eEwC@GM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  },
  {
    "desc": "invalid non-urlsafe characters in b64",
    "token": "gAAAAAAdwJ6wAAEC/AwQFBgcICQoLDA0ODy+021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
    "now": "1985-10-26T01:20:01-07:00",
    "ttl_sec": 60,
    "secret": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
  }
]"#;

thread_local! {
    // Each test runs on its own thread, so a thread-local clock is per test.
    static NOW: Cell<SystemTime> = const { Cell::new(SystemTime::UNIX_EPOCH) };
}

fn test_clock() -> SystemTime {
    NOW.with(Cell::get)
}

fn at(rfc3339: &str) -> SystemTime {
    SystemTime::from(OffsetDateTime::parse(rfc3339, &Rfc3339).expect("RFC 3339 time"))
}

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector has a string `{name}`"))
}

/// An encrypter holding only the vector's secret, reading the vector's `now`.
fn encrypter_for(case: &Value) -> Encrypter {
    NOW.with(|now| now.set(at(field(case, "now"))));
    let keyring = Keyring::new(KeySet::single("spec", KeyMaterial::from(field(case, "secret"))).unwrap());
    Encrypter::new(keyring, Derive::Raw)
        .expect("the spec secret is a Fernet key")
        .with_clock(test_clock)
}

fn cases(json: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(json).expect("embedded vectors are JSON")
}

#[test]
fn generate_vector_is_reproduced_byte_for_byte() {
    for case in cases(GENERATE) {
        let key = FernetKey::from_key_text(field(&case, "secret").as_bytes()).unwrap();
        let iv: Vec<u8> = case["iv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        let now = at(field(&case, "now"))
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = key.encrypt_with_iv(field(&case, "src").as_bytes(), now, &iv.try_into().unwrap());
        assert_eq!(token, field(&case, "token"));
    }
}

#[test]
fn generate_vector_timestamp_is_the_given_moment() {
    let case = &cases(GENERATE)[0];
    let encrypter = encrypter_for(case);
    let decrypted = encrypter.decrypt(field(case, "token"), None).unwrap();
    assert_eq!(decrypted.timestamp, Some(at(field(case, "now"))));
    assert_eq!(
        decrypted.timestamp,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(499_162_800))
    );
}

#[test]
fn encrypter_tokens_have_the_spec_layout() {
    let case = &cases(GENERATE)[0];
    let encrypter = encrypter_for(case);
    let token = encrypter.encrypt(field(case, "src")).unwrap();
    // 0x80 and the timestamp 499162800 encode to this prefix in every token of that second.
    assert!(token.starts_with("gAAAAAAdwJ6w"), "{token}");
    // 1 + 8 + 16 + one block + 32 = 73 bytes: 100 base64 characters, padded.
    assert_eq!(token.len(), 100);
    assert!(token.ends_with("=="));
    assert_ne!(token, field(case, "token"), "a fresh random IV, not the vector's");
}

#[test]
fn verify_vector_decrypts_within_its_ttl() {
    for case in cases(VERIFY) {
        let encrypter = encrypter_for(&case);
        let ttl = Duration::from_secs(case["ttl_sec"].as_u64().unwrap());
        let decrypted = encrypter.decrypt(field(&case, "token"), Some(ttl)).unwrap();
        assert_eq!(decrypted.value, field(&case, "src").as_bytes());
        assert_eq!(&*decrypted.key.id, "spec");
        assert!(!decrypted.needs_resign());
    }
}

/// What each invalid case must fail with, by its `desc`.
fn expected_failure(desc: &str) -> fn(&DecryptError) -> bool {
    match desc {
        "incorrect mac" => |e| *e == DecryptError::NoMatchingKey,
        "too short" => |e| *e == DecryptError::Malformed("too short"),
        "invalid base64"
        | "trailing characters after b64 padding"
        | "invalid characters in b64"
        | "invalid non-urlsafe characters in b64" => |e| *e == DecryptError::Malformed("not url-safe base64"),
        "payload size not multiple of block size" => {
            |e| *e == DecryptError::Malformed("ciphertext is not a whole number of AES blocks")
        }
        "payload padding error" | "incorrect IV (causes padding error)" => |e| *e == DecryptError::BadPadding,
        "far-future TS (unacceptable clock skew)" => |e| matches!(e, DecryptError::FromTheFuture { .. }),
        "expired TTL" => |e| {
            *e == DecryptError::Expired {
                age: Duration::from_secs(90),
                ttl: Duration::from_secs(60),
            }
        },
        other => panic!("no expectation for invalid case `{other}`"),
    }
}

#[test]
fn every_invalid_vector_is_refused_for_its_own_reason() {
    let all = cases(INVALID);
    assert_eq!(all.len(), 11);
    for case in &all {
        let desc = field(case, "desc");
        let encrypter = encrypter_for(case);
        let ttl = Duration::from_secs(case["ttl_sec"].as_u64().unwrap());
        let error = encrypter
            .decrypt(field(case, "token"), Some(ttl))
            .expect_err(desc);
        assert!(expected_failure(desc)(&error), "{desc}: got {error:?}");
        assert!(error.is_invalid_token(), "{desc}");
    }
}

#[test]
fn invalid_vectors_cannot_be_rotated_either() {
    // rotate ignores the TTL, so the two time-based cases are valid tokens to it.
    for case in cases(INVALID) {
        let desc = field(&case, "desc");
        let encrypter = encrypter_for(&case);
        let rotated = encrypter.rotate(field(&case, "token"));
        match desc {
            "far-future TS (unacceptable clock skew)" | "expired TTL" => {
                let token = rotated.unwrap_or_else(|e| panic!("{desc}: {e}"));
                // Both vectors encrypt the empty string (Python's Fernet agrees).
                assert_eq!(encrypter.decrypt(&token, None).unwrap().value, b"");
            }
            _ => assert!(rotated.is_err(), "{desc}"),
        }
    }
}

#[test]
fn tokens_must_keep_their_base64_padding_as_python_requires() {
    let case = &cases(VERIFY)[0];
    let encrypter = encrypter_for(case);
    let token = field(case, "token");
    assert!(encrypter.decrypt(token, None).is_ok());
    assert_eq!(
        encrypter.decrypt(token.trim_end_matches('='), None),
        Err(DecryptError::Malformed("not url-safe base64"))
    );
    // Surrounding whitespace (a trailing newline from a file or stdin) is not part of the token.
    assert!(encrypter.decrypt(&format!(" {token}\n"), None).is_ok());
}
