use keyroll_testkit::conformance::uris_are_refused;

use keyroll_core::ProviderErrorKind;

use google_cloud_secretmanager_v1::model::SecretPayload;

use super::*;

#[test]
fn a_uri_names_the_secret_and_defaults_to_the_global_endpoint() {
    let provider = GcpProvider::from_uri("gcp-sm://projects/my-project/secrets/app-key").unwrap();
    assert_eq!(provider.secret().as_str(), "projects/my-project/secrets/app-key");
    assert_eq!(provider.endpoint(), "https://secretmanager.googleapis.com");
    assert!(
        !provider.anonymous(),
        "https endpoints use Application Default Credentials"
    );
    assert_eq!(provider.source(), "gcp-sm://projects/my-project/secrets/app-key");
}

#[test]
fn a_regional_secret_defaults_to_its_regional_endpoint() {
    let provider = GcpProvider::from_uri("gcp-sm://projects/p/locations/europe-west1/secrets/s").unwrap();
    assert_eq!(provider.secret().location(), Some("europe-west1"));
    assert_eq!(
        provider.endpoint(),
        "https://secretmanager.europe-west1.rep.googleapis.com"
    );
}

#[test]
fn an_http_endpoint_is_spoken_to_anonymously() {
    let provider =
        GcpProvider::from_uri("gcp-sm://projects/p/secrets/s?endpoint=http://127.0.0.1:8085/").unwrap();
    assert_eq!(provider.endpoint(), "http://127.0.0.1:8085");
    assert!(provider.anonymous());
    assert_eq!(
        provider.source(),
        "gcp-sm://projects/p/secrets/s?endpoint=http://127.0.0.1:8085"
    );
}

#[test]
fn malformed_names_and_parameters_are_config_errors_that_show_the_expected_form() {
    let uris = [
        "gcp-sm://projects/p",
        "gcp-sm://projects/p/secrets/s/versions/1",
        "gcp-sm://secrets/s",
        "gcp-sm://projects//secrets/s",
    ];
    for error in uris_are_refused::<GcpProvider>(&uris, "") {
        assert!(
            error.to_string().contains("projects/PROJECT/secrets/SECRET"),
            "{error}"
        );
    }
    let error = GcpProvider::from_uri("gcp-sm://projects/p/secrets/s?endpont=http://x").unwrap_err();
    assert!(
        error.to_string().contains("unknown parameter `endpont`"),
        "{error}"
    );
    let error = GcpProvider::from_uri("gcp-sm://projects/p/secrets/s?endpoint=ftp://x").unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Config);
    let error =
        GcpProvider::from_uri("gcp-sm://projects/p/secrets/s?endpoint=https://user:pw@x").unwrap_err();
    assert!(
        !error.to_string().contains("pw@"),
        "never echoes credentials: {error}"
    );
}

const VERSION: &str = "projects/p/secrets/s/versions/3";

fn answer(data: &[u8], crc: Option<i64>) -> AccessSecretVersionResponse {
    let payload = SecretPayload::new()
        .set_data(bytes::Bytes::copy_from_slice(data))
        .set_or_clear_data_crc32c(crc);
    AccessSecretVersionResponse::new()
        .set_name(VERSION)
        .set_payload(payload)
}

#[test]
fn a_payload_is_the_key_when_its_crc32c_matches_or_is_missing() {
    let data = b"s3cr3t-payload-\xff\x00-0123456789";
    let crc = i64::from(crc32c::crc32c(data));
    for crc in [Some(crc), None] {
        let key = payload_material(VERSION, answer(data, crc)).unwrap();
        assert_eq!(key.expose_secret(), data, "crc {crc:?}");
    }
    // CRC-32C of "123456789" is 0xE3069283 (RFC 3720 check value).
    let key = payload_material(VERSION, answer(b"123456789", Some(0xE306_9283))).unwrap();
    assert_eq!(key.expose_secret(), b"123456789");
}

#[test]
fn a_payload_whose_crc32c_differs_is_invalid_and_the_error_names_the_version_not_the_data() {
    let data = b"s3cr3t-payload-0123456789";
    let crc = i64::from(crc32c::crc32c(data));
    // Off by one, the same low 32 bits in a wider or negative int64, another payload's.
    for wrong in [
        crc ^ 1,
        crc + (1 << 32),
        crc - (1 << 32),
        -1,
        i64::from(crc32c::crc32c(b"other")),
    ] {
        let error = payload_material(VERSION, answer(data, Some(wrong))).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert_eq!(error.kind(), ProviderErrorKind::Invalid, "{shown}");
        assert!(shown.contains(VERSION) && shown.contains("dataCrc32c"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}

#[test]
fn an_answer_without_a_payload_is_an_empty_key_and_an_empty_payload_checks_its_crc32c() {
    let key = payload_material(VERSION, AccessSecretVersionResponse::new().set_name(VERSION)).unwrap();
    assert!(key.is_empty());
    assert!(
        payload_material(VERSION, answer(b"", Some(0)))
            .unwrap()
            .is_empty()
    );
    assert!(payload_material(VERSION, answer(b"", Some(1))).is_err());
}

#[test]
fn the_rest_answer_carries_the_crc32c_as_an_int64_string() {
    // "k3y" is azN5 in base64; its CRC-32C is 3921220570.
    let parse = |json: &str| serde_json::from_str::<AccessSecretVersionResponse>(json).unwrap();
    let good = parse(r#"{"name":"n","payload":{"data":"azN5","dataCrc32c":"3921220570"}}"#);
    assert_eq!(payload_material(VERSION, good).unwrap().expose_secret(), b"k3y");
    let bad = parse(r#"{"name":"n","payload":{"data":"azN5","dataCrc32c":"3921220571"}}"#);
    assert!(payload_material(VERSION, bad).is_err());
}

#[test]
fn debug_shows_the_secret_and_endpoint_only() {
    let provider = GcpProvider::builder()
        .secret("projects/p/secrets/s")
        .build()
        .unwrap();
    let debug = format!("{provider:?}");
    assert!(
        debug.contains("projects/p/secrets/s") && debug.contains("held_versions: 0"),
        "{debug}"
    );
}
