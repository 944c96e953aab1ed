//! What a verify accepts and refuses, token by token: the specification of
//! keyroll-jwt's checks.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{CURRENT, FALLBACK, NOW, RETIRED, STRANGER, now, only, rotated};
use hmac::{Hmac, Mac};
use keyroll_core::{KeyEntry, KeyMaterial, KeySet, Role};
use keyroll_jwt::{Algorithm, Error, Signer, WithoutKid};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

fn signer() -> Signer {
    Signer::builder(rotated()).clock(now).build()
}

fn in_an_hour() -> Value {
    json!({"sub": "42", "exp": NOW + 3600})
}

/// A token with any header and payload, HS256-signed with `key`.
fn forge(header: &Value, payload: &[u8], key: &str) -> String {
    let signed = format!("{}.{}", B64.encode(header.to_string()), B64.encode(payload));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn forge_claims(header: Value, claims: &Value) -> String {
    forge(&header, claims.to_string().as_bytes(), CURRENT)
}

fn refused(token: &str) -> Error {
    signer().verify::<Value>(token).expect_err("refused")
}

#[test]
fn header_names_the_signing_key_and_the_token_verifies_with_it() {
    let token = signer().sign(&in_an_hour()).unwrap();
    let header: Value =
        serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "kid": "k3", "typ": "JWT"}));
    let verified = signer().verify::<Value>(&token).unwrap();
    assert_eq!(verified.value, in_an_hour());
    assert_eq!((&*verified.key.id, verified.key.role), ("k3", Role::Current));
    assert!(!verified.needs_resign());
}

#[test]
fn typed_claims_round_trip_and_iat_is_the_timestamp() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Session {
        sub: String,
        roles: Vec<String>,
    }
    let claims = Session {
        sub: "alice".into(),
        roles: vec!["admin".into()],
    };
    let token = signer().sign_with_ttl(&claims, Duration::from_secs(300)).unwrap();
    let raw = signer().verify::<Value>(&token).unwrap().value;
    assert_eq!(
        (raw["iat"].as_u64(), raw["exp"].as_u64()),
        (Some(NOW), Some(NOW + 300))
    );
    let verified = signer().verify::<Session>(&token).unwrap();
    assert_eq!(verified.value, claims);
    assert_eq!(verified.timestamp, Some(now()));
    let wrong_type = signer().verify::<Vec<u8>>(&token).unwrap_err();
    assert!(matches!(wrong_type, Error::Claims(_)), "{wrong_type:?}");
}

#[test]
fn fallback_key_tokens_verify_and_ask_for_a_new_token() {
    let old = Signer::builder(only("k2", FALLBACK)).clock(now).build();
    let verified = signer()
        .verify::<Value>(&old.sign(&in_an_hour()).unwrap())
        .unwrap();
    assert_eq!((&*verified.key.id, verified.key.role), ("k2", Role::Fallback));
    assert!(verified.needs_resign());
}

#[test]
fn retired_and_unknown_keys_are_refused_with_or_without_kid() {
    let retired = Signer::builder(only("k1", RETIRED)).clock(now).build();
    assert_eq!(refused(&retired.sign(&in_an_hour()).unwrap()), Error::UnknownKey);
    let stranger = Signer::builder(only("k9", STRANGER)).clock(now).build();
    assert_eq!(refused(&stranger.sign(&in_an_hour()).unwrap()), Error::UnknownKey);
    // A stranger claiming the current key's id: the MAC decides.
    let impostor = Signer::builder(only("k3", STRANGER)).clock(now).build();
    assert_eq!(
        refused(&impostor.sign(&in_an_hour()).unwrap()),
        Error::BadSignature
    );
    for key in [RETIRED, STRANGER] {
        let token = forge(&json!({"alg": "HS256"}), in_an_hour().to_string().as_bytes(), key);
        assert_eq!(refused(&token), Error::BadSignature);
    }
}

#[test]
fn tokens_without_kid_try_every_key_unless_refused() {
    let payload = in_an_hour().to_string();
    let current = forge(
        &json!({"alg": "HS256", "typ": "JWT"}),
        payload.as_bytes(),
        CURRENT,
    );
    let fallback = forge(&json!({"alg": "HS256"}), payload.as_bytes(), FALLBACK);
    let verified = signer().verify::<Value>(&current).unwrap();
    assert_eq!((&*verified.key.id, verified.key.role), ("k3", Role::Current));
    let verified = signer().verify::<Value>(&fallback).unwrap();
    assert_eq!((&*verified.key.id, verified.key.role), ("k2", Role::Fallback));

    let strict = Signer::builder(rotated())
        .clock(now)
        .without_kid(WithoutKid::Refuse)
        .build();
    assert_eq!(strict.verify::<Value>(&current).unwrap_err(), Error::MissingKeyId);
    assert!(
        strict
            .verify::<Value>(&signer().sign(&in_an_hour()).unwrap())
            .is_ok()
    );
}

#[test]
fn alg_none_asymmetric_algorithms_and_unaccepted_ones_are_refused() {
    let claims = B64.encode(in_an_hour().to_string());
    for alg in ["none", "None", "NONE"] {
        let header = B64.encode(json!({"alg": alg, "kid": "k3"}).to_string());
        assert_eq!(refused(&format!("{header}.{claims}.")), Error::NoneAlgorithm);
    }
    // Algorithm confusion: an RS256 "signature" that is an HMAC with the key.
    for alg in ["RS256", "PS384", "ES256", "EdDSA"] {
        let token = forge_claims(json!({"alg": alg, "kid": "k3"}), &in_an_hour());
        assert_eq!(refused(&token), Error::AsymmetricAlgorithm(alg.into()));
    }
    for alg in ["HS512", "hs256", "HS1", ""] {
        let token = forge_claims(json!({"alg": alg, "kid": "k3"}), &in_an_hour());
        assert_eq!(refused(&token), Error::AlgorithmNotAccepted(alg.into()));
    }
}

#[test]
fn hs384_and_hs512_sign_and_are_accepted_on_request() {
    for algorithm in [Algorithm::Hs384, Algorithm::Hs512] {
        let own = Signer::builder(rotated()).algorithm(algorithm).clock(now).build();
        let token = own.sign(&in_an_hour()).unwrap();
        assert_eq!(own.verify::<Value>(&token).unwrap().value, in_an_hour());
        assert!(matches!(refused(&token), Error::AlgorithmNotAccepted(_)));
        let accepting = Signer::builder(rotated())
            .accept_algorithm(algorithm)
            .clock(now)
            .build();
        assert!(accepting.verify::<Value>(&token).is_ok());
        assert_eq!(algorithm.to_string().parse::<Algorithm>().unwrap(), algorithm);
    }
    assert!("RS256".parse::<Algorithm>().is_err());
}

#[test]
fn critical_header_extensions_are_refused() {
    let token = forge_claims(
        json!({"alg": "HS256", "kid": "k3", "crit": ["b64"], "b64": false}),
        &in_an_hour(),
    );
    assert_eq!(refused(&token), Error::UnsupportedCritical(vec!["b64".into()]));
}

/// RFC 7515 §4.1.11: `crit` is an array of names; `null` (which serde reads
/// as absent) and other types are malformed headers, as PyJWT holds.
#[test]
fn a_crit_header_that_is_not_an_array_is_refused() {
    for crit in [json!(null), json!("b64"), json!({}), json!(1), json!([1])] {
        let token = forge_claims(json!({"alg": "HS256", "kid": "k3", "crit": crit}), &in_an_hour());
        assert!(
            matches!(refused(&token), Error::Malformed(_)),
            "crit {crit}: {:?}",
            refused(&token)
        );
    }
    let token = forge_claims(json!({"alg": "HS256", "kid": "k3", "crit": []}), &in_an_hour());
    assert_eq!(refused(&token), Error::UnsupportedCritical(Vec::new()));
    let token = forge_claims(json!({"alg": "HS256", "kid": "k3"}), &in_an_hour());
    assert!(signer().verify::<Value>(&token).is_ok(), "no crit at all is fine");
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let big = json!({"exp": NOW + 60, "pad": "x".repeat(10_000)});
    let token = forge_claims(json!({"alg": "HS256", "kid": "k3"}), &big);
    assert_eq!(refused(&token), Error::TooLarge { limit: 8192 });
    let roomy = Signer::builder(rotated())
        .clock(now)
        .max_token_len(20_000)
        .build();
    assert!(roomy.verify::<Value>(&token).is_ok());
    assert_eq!(refused(&"a".repeat(1 << 20)), Error::TooLarge { limit: 8192 });
}

#[test]
fn malformed_and_tampered_tokens_are_typed_errors() {
    let token = signer().sign(&in_an_hour()).unwrap();
    let (header, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    type Expected = fn(&Error) -> bool;
    let cases: Vec<(String, Expected)> = vec![
        (String::new(), |e| matches!(e, Error::Malformed(_))),
        ("abc".into(), |e| matches!(e, Error::Malformed(_))),
        (format!("{header}.{payload}"), |e| {
            matches!(e, Error::Malformed(_))
        }),
        (format!("{header}.{payload}.{signature}.x"), |e| {
            matches!(e, Error::Malformed(_))
        }),
        (format!("{header}.{payload}.{signature}.x.y"), |e| {
            matches!(e, Error::Malformed(_))
        }),
        (format!("!{header}.{payload}.{signature}"), |e| {
            matches!(e, Error::Malformed(_))
        }),
        (format!("{}.{payload}.{signature}", B64.encode("[1]")), |e| {
            matches!(e, Error::Malformed(_))
        }),
        (
            format!("{}.{payload}.{signature}", B64.encode("{\"kid\":1}")),
            |e| matches!(e, Error::Malformed(_)),
        ),
        (format!("{header}.{payload}.{}", &signature[1..]), |e| {
            *e == Error::BadSignature
        }),
        (format!("{header}.{payload}.{signature}A"), |e| {
            *e == Error::BadSignature
        }),
        (format!("{header}.{payload}x.{signature}"), |e| {
            *e == Error::BadSignature
        }),
        (format!("{header}.{}.{signature}", &payload[1..]), |e| {
            *e == Error::BadSignature
        }),
    ];
    for (token, expected) in cases {
        let error = refused(&token);
        assert!(expected(&error), "{token:?}: {error:?}");
    }
    // Every single-byte change of a valid token is refused.
    for at in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(signer().verify::<Value>(&tampered).is_err(), "byte {at}");
    }
}

#[test]
fn validly_signed_payloads_that_are_not_claims_are_typed_errors() {
    let header = json!({"alg": "HS256", "kid": "k3"});
    for payload in [
        &b"[1,2]"[..],
        b"\"text\"",
        b"{",
        b"\xff\xfe",
        br#"{"exp":"soon"}"#,
        br#"{"exp":1,"exp":2}"#,
    ] {
        let error = refused(&forge(&header, payload, CURRENT));
        assert!(
            matches!(error, Error::Malformed(_) | Error::Claims(_)),
            "{payload:?}: {error:?}"
        );
    }
    let header_b64 = B64.encode(header.to_string());
    let not_base64 = format!("{header_b64}.%%%");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(CURRENT.as_bytes()).unwrap();
    mac.update(not_base64.as_bytes());
    let token = format!("{not_base64}.{}", B64.encode(mac.finalize().into_bytes()));
    assert_eq!(refused(&token), Error::Malformed("the payload is not base64url"));
}

#[test]
fn exp_nbf_and_iat_are_checked_with_the_leeway() {
    let at = |claims: Value| signer().verify::<Value>(&signer().sign(&claims).unwrap());
    // Default leeway 60 s: expired once exp <= now - 60.
    assert!(at(json!({"exp": NOW - 59})).is_ok());
    assert_eq!(
        at(json!({"exp": NOW - 60})).unwrap_err(),
        Error::Expired {
            exp: (NOW - 60) as i64
        }
    );
    assert!(at(json!({"exp": NOW - 60})).unwrap_err().is_expired());
    assert!(at(json!({"exp": (NOW - 59) as f64 + 0.5})).is_ok());
    assert!(at(json!({"exp": NOW + 60, "nbf": NOW + 60})).is_ok());
    assert_eq!(
        at(json!({"exp": NOW + 600, "nbf": NOW + 61})).unwrap_err(),
        Error::NotYetValid {
            claim: "nbf",
            at: (NOW + 61) as i64
        }
    );
    assert_eq!(
        at(json!({"exp": NOW + 600, "iat": NOW + 61})).unwrap_err(),
        Error::NotYetValid {
            claim: "iat",
            at: (NOW + 61) as i64
        }
    );
    assert_eq!(
        at(json!({"sub": "forever"})).unwrap_err(),
        Error::MissingClaim("exp")
    );
    assert!(at(json!({"exp": u64::MAX})).is_ok());
    assert!(at(json!({"exp": -1e300})).unwrap_err().is_expired());

    let strict = Signer::builder(rotated())
        .clock(now)
        .leeway(Duration::ZERO)
        .require_exp(false)
        .build();
    let check = |claims: Value| strict.verify::<Value>(&strict.sign(&claims).unwrap());
    assert!(check(json!({"exp": NOW})).unwrap_err().is_expired());
    assert!(check(json!({"exp": NOW + 1})).is_ok());
    assert!(check(json!({"sub": "no exp"})).is_ok());
}

#[test]
fn issuer_and_audience_are_checked() {
    let checking = Signer::builder(rotated())
        .clock(now)
        .issuer("https://auth.example")
        .audience("api")
        .audience("admin")
        .build();
    let check = |claims: Value| checking.verify::<Value>(&checking.sign(&claims).unwrap());
    let exp = NOW + 60;
    assert!(check(json!({"exp": exp, "iss": "https://auth.example", "aud": "api"})).is_ok());
    assert!(check(json!({"exp": exp, "iss": "https://auth.example", "aud": ["other", "admin"]})).is_ok());
    assert_eq!(
        check(json!({"exp": exp, "aud": "api"})).unwrap_err(),
        Error::MissingClaim("iss")
    );
    assert_eq!(
        check(json!({"exp": exp, "iss": "https://evil", "aud": "api"})).unwrap_err(),
        Error::InvalidIssuer
    );
    assert_eq!(
        check(json!({"exp": exp, "iss": "https://auth.example"})).unwrap_err(),
        Error::MissingClaim("aud")
    );
    assert_eq!(
        check(json!({"exp": exp, "iss": "https://auth.example", "aud": ["web"]})).unwrap_err(),
        Error::InvalidAudience
    );
    // A token for some audience is not for a verifier that checks none.
    let plain = |claims: Value| signer().verify::<Value>(&signer().sign(&claims).unwrap());
    assert_eq!(
        plain(json!({"exp": exp, "aud": "api"})).unwrap_err(),
        Error::InvalidAudience
    );
    assert!(plain(json!({"exp": exp, "aud": []})).is_ok());
    // keyroll refuses to sign such claims; another issuer's token with them
    // is refused at verification.
    let forged = forge_claims(
        json!({"alg": "HS256", "kid": "k3"}),
        &json!({"exp": exp, "aud": 7}),
    );
    assert!(matches!(
        signer().verify::<Value>(&forged).unwrap_err(),
        Error::Claims(_)
    ));
}

#[test]
fn claims_that_are_not_an_object_are_not_signed() {
    assert!(matches!(signer().sign(&json!([1])), Err(Error::Serialize(_))));
    assert!(matches!(
        signer().sign_with_ttl(&"text", Duration::from_secs(1)),
        Err(Error::Serialize(_))
    ));
}

#[test]
fn a_new_key_set_signs_and_verifies_at_once_and_the_old_current_key_becomes_a_fallback() {
    let keyring = rotated();
    let signer = Signer::builder(keyring.clone()).clock(now).build();
    let before = signer.sign(&in_an_hour()).unwrap();
    let epoch = UNIX_EPOCH;
    let y2001 = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    keyring.install(
        KeySet::new(
            vec![
                KeyEntry::new("k4", KeyMaterial::from(STRANGER), Some(epoch), None, None),
                KeyEntry::new("k3", KeyMaterial::from(CURRENT), Some(epoch), Some(y2001), None),
            ],
            SystemTime::now(),
        )
        .unwrap(),
    );
    let after = signer.sign(&in_an_hour()).unwrap();
    assert_eq!(&*signer.verify::<Value>(&after).unwrap().key.id, "k4");
    let old = signer.verify::<Value>(&before).unwrap();
    assert_eq!((&*old.key.id, old.key.role), ("k3", Role::Fallback));
    let fallback = Signer::builder(only("k2", FALLBACK)).clock(now).build();
    assert_eq!(
        signer
            .verify::<Value>(&fallback.sign(&in_an_hour()).unwrap())
            .unwrap_err(),
        Error::UnknownKey
    );
}

#[test]
fn debug_and_errors_never_show_key_material() {
    let signer = signer();
    let token = signer.sign(&in_an_hour()).unwrap();
    let mut texts = vec![
        format!("{signer:?}"),
        format!("{:?}", signer.verify::<Value>(&token)),
    ];
    for bad in ["x", &token[1..], &format!("{token}A")] {
        let error = signer.verify::<Value>(bad).unwrap_err();
        texts.push(format!("{error} {error:?}"));
    }
    for text in texts {
        for secret in [CURRENT, FALLBACK, RETIRED] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

/// Found by the `jwt_token` fuzz target: `{"iss": 0}` signed, then its own
/// verifier refused it. Claims the verifier would refuse for their type are
/// refused at signing instead, with and without a ttl.
#[test]
fn registered_claims_of_the_wrong_type_are_refused_at_signing() {
    let signer = signer();
    for claims in [
        json!({"exp": 1_800_000_060, "iss": 0}),
        json!({"exp": "tomorrow"}),
        json!({"exp": 1_800_000_060, "nbf": [1]}),
        json!({"exp": 1_800_000_060, "aud": {"a": 1}}),
        json!({"exp": 1_800_000_060, "aud": ["a", 2]}),
    ] {
        let error = signer.sign(&claims).unwrap_err();
        assert!(matches!(error, Error::Serialize(_)), "{claims}: {error:?}");
        // sign_with_ttl writes exp itself; the other claims are checked alike.
        let ttl = signer.sign_with_ttl(&claims, Duration::from_secs(60));
        assert_eq!(ttl.is_ok(), claims["exp"].is_string(), "{claims}");
    }
    let right = json!({"exp": 1_800_000_060, "iss": "me", "aud": ["a", "b"], "nbf": 1, "iat": 1});
    assert!(signer.sign(&right).is_ok());
}

#[test]
fn a_retired_key_is_refused_at_once_even_without_a_refresher() {
    // System clock, no refresher to install a new generation: roles come from
    // the generation's snapshot until its next transition, then exactly.
    let now = SystemTime::now();
    let until = now + Duration::from_millis(50);
    let epoch = UNIX_EPOCH;
    let keyring = keyroll_core::Keyring::new(
        KeySet::new(
            vec![
                KeyEntry::new("k3", KeyMaterial::from(CURRENT), Some(epoch), None, None),
                KeyEntry::new(
                    "k2",
                    KeyMaterial::from(FALLBACK),
                    Some(epoch),
                    Some(epoch),
                    Some(until),
                ),
            ],
            now,
        )
        .unwrap(),
    );
    let signer = Signer::new(keyring.clone());
    let with_kid = Signer::new(only("k2", FALLBACK))
        .sign_with_ttl(&json!({"sub": "42"}), Duration::from_secs(3600))
        .unwrap();
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
    let without_kid = forge(
        &json!({"alg": "HS256"}),
        json!({"sub": "42", "exp": exp}).to_string().as_bytes(),
        FALLBACK,
    );
    for token in [&with_kid, &without_kid] {
        let verified = signer.verify::<Value>(token).unwrap();
        assert_eq!((&*verified.key.id, verified.key.role), ("k2", Role::Fallback));
    }
    while SystemTime::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(signer.verify::<Value>(&with_kid).unwrap_err(), Error::UnknownKey);
    assert_eq!(
        signer.verify::<Value>(&without_kid).unwrap_err(),
        Error::BadSignature
    );
    assert_eq!(keyring.generation(), 1, "no new generation was installed");
}

#[test]
fn nothing_signs_once_every_key_that_could_sign_has_expired() {
    let until = now() - Duration::from_secs(1);
    let only_key = KeyEntry::new(
        "a",
        KeyMaterial::from(CURRENT),
        Some(UNIX_EPOCH),
        Some(until),
        Some(until),
    );
    let keyring =
        keyroll_core::Keyring::new(KeySet::new(vec![only_key], until - Duration::from_secs(60)).unwrap());
    let signer = Signer::builder(keyring).clock(now).build();
    assert_eq!(signer.sign(&in_an_hour()), Err(Error::Stale));
    assert_eq!(
        signer.sign_with_ttl(&json!({"sub": "x"}), Duration::from_secs(60)),
        Err(Error::Stale)
    );
}
