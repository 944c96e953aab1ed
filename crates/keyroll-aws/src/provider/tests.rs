use keyroll_testkit::conformance::uris_are_refused;

use super::*;

#[test]
fn a_name_with_slashes_is_one_secret_id() {
    let p = AwsProvider::from_uri("aws-sm://prod/myapp/signing-key?region=eu-west-1").unwrap();
    assert_eq!(p.secret_id(), "prod/myapp/signing-key");
    assert_eq!(p.source(), "aws-sm://prod/myapp/signing-key?region=eu-west-1");
}

#[test]
fn an_arn_is_one_secret_id_and_gives_the_region() {
    let arn = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:team/app-key-AbCdEf";
    let p = AwsProvider::from_uri(&format!("aws-sm://{arn}")).unwrap();
    assert_eq!(p.secret_id(), arn);
    assert!(p.source().contains("region=ap-south-1"), "{}", p.source());
    let p = AwsProvider::from_uri(&format!("aws-sm://{arn}?region=us-west-2")).unwrap();
    assert!(p.source().contains("region=us-west-2"), "an explicit region wins");
}

#[test]
fn percent_escapes_in_the_id_are_decoded() {
    let p = AwsProvider::from_uri("aws-sm://my%20secret%3Fx?field=key").unwrap();
    assert_eq!(p.secret_id(), "my secret?x");
}

#[test]
fn unknown_parameters_are_config_errors() {
    let err = AwsProvider::from_uri("aws-sm://app?regoin=eu-west-1").unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Config);
    assert!(err.to_string().contains("regoin"), "{err}");
}

#[test]
fn empty_ids_fields_and_bad_endpoints_are_config_errors() {
    uris_are_refused::<AwsProvider>(
        &[
            "aws-sm://",
            "aws-sm://?region=eu-west-1",
            "aws-sm://app?field=",
            "aws-sm://app?endpoint=localhost:4566",
            "aws-sm://app?endpoint=http://user:pw-s3cr3t@localhost:4566",
        ],
        "s3cr3t",
    );
    assert!(AwsProvider::from_uri("aws-sm://app?endpoint=http://localhost:4566/a@b").is_ok());
}

#[test]
fn debug_and_source_never_show_credentials() {
    let p = AwsProvider::builder()
        .secret_id("app")
        .credentials("AKIAEXAMPLEKEYID", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        .build()
        .unwrap();
    let shown = format!("{p:?} {}", p.source());
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    assert!(!shown.contains("AKIAEXAMPLEKEYID"), "{shown}");
}

#[test]
fn labels_give_stages_and_a_finished_rotation_is_current() {
    let labels = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(stage_of(&labels(&["AWSCURRENT"])), Some(Stage::Current));
    assert_eq!(
        stage_of(&labels(&["AWSPENDING", "AWSCURRENT"])),
        Some(Stage::Current)
    );
    assert_eq!(stage_of(&labels(&["AWSPENDING"])), Some(Stage::Pending));
    assert_eq!(stage_of(&labels(&["AWSPREVIOUS"])), Some(Stage::Previous));
    assert_eq!(stage_of(&labels(&["custom"])), None);
    assert_eq!(stage_of(&[]), None);
}
