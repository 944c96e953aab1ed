//! The interop vectors of REFERENCES.md §1.4, verified there against Django 5.2.19.

mod common;

use common::{at_1700000000, keyring, single};
use keyroll_django::{Algorithm, DUMPS_SALT, Signer, TimestampSigner, base62};
use serde_json::json;

#[test]
fn signer_signs_foo_like_django() {
    let signer = Signer::new(single("predictable-secret"));
    assert_eq!(
        signer.sign("foo").unwrap(),
        "foo:jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0"
    );
}

#[test]
fn non_utf8_key_bytes_sign_like_django() {
    let signer = Signer::new(keyring(b"\xe7", &[]));
    assert_eq!(
        signer.sign("foo").unwrap(),
        "foo:EE4qGC5MEKyQG5msxYA0sBohAxLC0BJf8uRhemh0BGU"
    );
}

#[test]
fn sha512_signature_matches_django() {
    let signer = Signer::builder(single("predictable-secret"))
        .algorithm(Algorithm::Sha512)
        .build()
        .unwrap();
    assert_eq!(
        signer.sign("hello").unwrap(),
        "hello:Usf3uVQOZ9m6uPfVonKR-EBXjPe7bjMbp3_Fq8MfsptgkkM1ojidN0BxYaT5HAEN1VzO9_jVu7R-VkqknHYNvw"
    );
}

#[test]
fn custom_salt_signs_like_django() {
    let signer = Signer::builder(single("predictable-secret"))
        .salt("extra")
        .build()
        .unwrap();
    assert_eq!(
        signer.sign("hello").unwrap(),
        "hello:e3m_xPu0LyRVmRanDRnQV8PdEEIWCQlolm6HK02XZwA"
    );
}

#[test]
fn timestamp_signer_signs_like_django() {
    let signer = TimestampSigner::builder(single("predictable-secret"))
        .clock(at_1700000000)
        .build()
        .unwrap();
    assert_eq!(
        signer.sign("hello").unwrap(),
        "hello:1r31eq:ESnvh0UG3MKjmlEh8oOo4AB3aBbzEzE2OxtKdYRmPIU"
    );
}

fn dumps_signer() -> TimestampSigner {
    TimestampSigner::builder(single("predictable-secret"))
        .salt(DUMPS_SALT)
        .clock(at_1700000000)
        .build()
        .unwrap()
}

#[test]
fn dumps_of_a_dict_matches_django() {
    assert_eq!(
        dumps_signer()
            .sign_object(&json!({"a": 1, "b": [1, 2]}), false)
            .unwrap(),
        "eyJhIjoxLCJiIjpbMSwyXX0:1r31eq:4vF6KXAX63TIzTySfw0nFkrsXlHWcq7LJ7DFhjY_JTU"
    );
}

#[test]
fn compressed_dumps_is_byte_identical_to_python_zlib() {
    let numbers: Vec<u32> = (1..20).collect();
    assert_eq!(
        dumps_signer().sign_object(&numbers, true).unwrap(),
        ".eJwFwcERACAIwLCF-rCiILN47r-GyZVJsNgkxaFxoDgxcOHGxMKD_T7vhAml:1r31eq:cWrrlyJwdPYgP55b3ZfMQina7WM89uOdlmM6QHxJnMI"
    );
}

#[test]
fn dumps_escapes_non_ascii_like_python_json() {
    assert_eq!(
        dumps_signer().sign_object("héllo", false).unwrap(),
        "ImhcdTAwZTlsbG8i:1r31eq:RxhUhPMlE_Gx-ReLyJ3USBytfWKldFRwr9xRD5NBr4s"
    );
}

#[test]
fn sign_object_matches_django() {
    let signer = Signer::new(single("predictable-secret"));
    assert_eq!(
        signer.sign_object(&json!({"message": "Hello!"}), false).unwrap(),
        "eyJtZXNzYWdlIjoiSGVsbG8hIn0:dzIdqt2lXR-c-fXQCyzVLIzcm7m0a6qg8YHUAvq_Ip8"
    );
}

#[test]
fn old_key_signature_verifies_as_fallback() {
    let old = Signer::new(single("old-secret"));
    let signed = old.sign("abc").unwrap();
    assert_eq!(signed, "abc:dEVZm49U3ZiFoj98IBIulY7tvpfTccC58mvsJoBodEM");
    let rotated = Signer::new(keyring(b"new", &[b"old-secret"]));
    let verified = rotated.verify(&signed).unwrap();
    assert_eq!(verified.value, "abc");
    assert_eq!(&*verified.key.id, "fallback-1");
    assert!(verified.needs_resign());
}

#[test]
fn base62_matches_django() {
    assert_eq!(base62::encode(123_456_789), "8M0kX");
    assert_eq!(base62::encode(1_620_378_259), "1lewPD");
    assert_eq!(base62::encode(1_700_000_000), "1r31eq");
}
