//! Interop both ways with PyJWT 2.10 (from the test venv) and the
//! `jsonwebtoken` crate, with the same keys and a rotated key ring: tokens
//! of a fallback key verify and ask for a new token, tokens of a retired
//! key are refused.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{CURRENT, FALLBACK, RETIRED, STRANGER, only, rotated};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use keyroll_core::Role;
use keyroll_jwt::{Algorithm, Error, Signer, WithoutKid};
use keyroll_testkit::python::run_peer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const PEER: &str = include_str!("pyjwt_peer.py");

/// Runs `ops` in PyJWT; `None` when the venv is missing (outside CI).
fn pyjwt(ops: &[Value]) -> Option<Vec<Value>> {
    run_peer(&["jwt"], PEER, ops)
}

fn ok(result: &Value) -> &Value {
    result
        .get("ok")
        .unwrap_or_else(|| panic!("PyJWT raised: {result}"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Claims {
    sub: String,
    name: String,
    admin: bool,
    exp: u64,
    iat: u64,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims() -> Claims {
    let now = unix_now();
    Claims {
        sub: "42".into(),
        name: "Zoë 😀 \"quoted\"".into(),
        admin: true,
        exp: now + 600,
        iat: now,
    }
}

/// The keys a PyJWT service holds after the rotation: current and fallback.
fn python_keys() -> Value {
    json!({"k3": CURRENT, "k2": FALLBACK})
}

#[test]
fn keyroll_tokens_verify_in_pyjwt_and_jsonwebtoken() {
    let claims = claims();
    let mut ops = Vec::new();
    let mut tokens = Vec::new();
    for algorithm in [Algorithm::Hs256, Algorithm::Hs384, Algorithm::Hs512] {
        let signer = Signer::builder(rotated()).algorithm(algorithm).build();
        let token = signer.sign(&claims).unwrap();
        ops.push(json!({"op": "decode", "keys": python_keys(), "token": token}));
        tokens.push((algorithm, token));
    }
    let aud = Signer::builder(rotated())
        .build()
        .sign(&json!({"exp": unix_now() + 60, "aud": "api", "iss": "me"}))
        .unwrap();
    ops.push(json!({"op": "decode", "keys": python_keys(), "token": aud, "audience": "api", "issuer": "me"}));
    let Some(results) = pyjwt(&ops) else {
        return;
    };
    for ((algorithm, token), result) in tokens.iter().zip(&results) {
        assert_eq!(
            serde_json::from_value::<Claims>(ok(result).clone()).unwrap(),
            claims,
            "{algorithm}"
        );

        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k3"));
        let alg = header.alg;
        let decoded = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(CURRENT.as_bytes()).unwrap(),
            &Validation::new(alg),
        )
        .unwrap();
        assert_eq!(decoded.claims, claims);
    }
    assert_eq!(ok(&results[3])["aud"], "api");
}

#[test]
fn pyjwt_tokens_verify_here_by_kid_with_rotation() {
    let claims = claims();
    let ops: Vec<Value> = [
        (CURRENT, Some("k3"), "HS256"),
        (FALLBACK, Some("k2"), "HS256"),
        (RETIRED, Some("k1"), "HS256"),
        (STRANGER, Some("k9"), "HS256"),
        (CURRENT, None, "HS256"),
        (FALLBACK, None, "HS256"),
        (RETIRED, None, "HS256"),
        (FALLBACK, Some("k2"), "HS512"),
    ]
    .iter()
    .map(|(key, kid, alg)| json!({"op": "encode", "key": key, "kid": kid, "claims": &claims, "alg": alg}))
    .collect();
    let Some(results) = pyjwt(&ops) else {
        return;
    };
    let token = |i: usize| ok(&results[i]).as_str().unwrap().to_owned();
    let signer = Signer::builder(rotated())
        .accept_algorithm(Algorithm::Hs512)
        .build();
    let verify = |i: usize| signer.verify::<Claims>(&token(i));

    let current = verify(0).unwrap();
    assert_eq!(
        (&current.value, &*current.key.id, current.needs_resign()),
        (&claims, "k3", false)
    );
    let fallback = verify(1).unwrap();
    assert_eq!((&*fallback.key.id, fallback.key.role), ("k2", Role::Fallback));
    assert!(fallback.needs_resign());
    assert_eq!(verify(2).unwrap_err(), Error::UnknownKey);
    assert_eq!(verify(3).unwrap_err(), Error::UnknownKey);
    assert_eq!(&*verify(4).unwrap().key.id, "k3");
    assert!(verify(5).unwrap().needs_resign());
    assert_eq!(verify(6).unwrap_err(), Error::BadSignature);
    assert_eq!(&*verify(7).unwrap().key.id, "k2");

    let strict = Signer::builder(rotated()).without_kid(WithoutKid::Refuse).build();
    assert_eq!(
        strict.verify::<Claims>(&token(4)).unwrap_err(),
        Error::MissingKeyId
    );
}

#[test]
fn pyjwt_and_keyroll_agree_on_expiry_and_audience() {
    let now = unix_now();
    let expired = json!({"exp": now - 3600});
    let future = json!({"exp": now + 3600, "nbf": now + 3600});
    let for_api = json!({"exp": now + 3600, "aud": "api"});
    let ops: Vec<Value> = [&expired, &future, &for_api]
        .iter()
        .map(|claims| json!({"op": "encode", "key": CURRENT, "kid": "k3", "claims": claims}))
        .collect();
    let Some(results) = pyjwt(&ops) else {
        return;
    };
    let signer = Signer::new(rotated());
    let tokens: Vec<String> = results
        .iter()
        .map(|r| ok(r).as_str().unwrap().to_owned())
        .collect();
    assert!(signer.verify::<Value>(&tokens[0]).unwrap_err().is_expired());
    assert!(matches!(
        signer.verify::<Value>(&tokens[1]).unwrap_err(),
        Error::NotYetValid { claim: "nbf", .. }
    ));
    assert_eq!(
        signer.verify::<Value>(&tokens[2]).unwrap_err(),
        Error::InvalidAudience
    );
    let api = Signer::builder(rotated()).audience("api").build();
    assert!(api.verify::<Value>(&tokens[2]).is_ok());

    // PyJWT refuses the same tokens made here.
    let own = Signer::new(only("k3", CURRENT));
    let decode: Vec<Value> = [&expired, &future, &for_api]
        .iter()
        .map(|claims| json!({"op": "decode", "keys": python_keys(), "token": own.sign(claims).unwrap()}))
        .collect();
    let results = pyjwt(&decode).unwrap();
    let errors: Vec<&str> = results
        .iter()
        .map(|r| r["error"].as_str().unwrap_or("accepted"))
        .collect();
    assert_eq!(
        errors,
        [
            "ExpiredSignatureError",
            "ImmatureSignatureError",
            "InvalidAudienceError"
        ]
    );
}

#[test]
fn jsonwebtoken_tokens_verify_here_by_kid_with_rotation() {
    let claims = claims();
    let encode = |key: &str, kid: Option<&str>, alg: jsonwebtoken::Algorithm| {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(key.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let hs256 = jsonwebtoken::Algorithm::HS256;
    let signer = Signer::builder(rotated())
        .accept_algorithm(Algorithm::Hs384)
        .build();
    let verify = |token: String| signer.verify::<Claims>(&token);

    let current = verify(encode(CURRENT, Some("k3"), hs256)).unwrap();
    assert_eq!((current.value, current.key.role), (claims.clone(), Role::Current));
    let fallback = verify(encode(FALLBACK, Some("k2"), hs256)).unwrap();
    assert_eq!((&*fallback.key.id, fallback.needs_resign()), ("k2", true));
    assert_eq!(
        verify(encode(RETIRED, Some("k1"), hs256)).unwrap_err(),
        Error::UnknownKey
    );
    assert_eq!(
        verify(encode(RETIRED, None, hs256)).unwrap_err(),
        Error::BadSignature
    );
    assert!(verify(encode(FALLBACK, None, hs256)).unwrap().needs_resign());
    assert!(verify(encode(CURRENT, Some("k3"), jsonwebtoken::Algorithm::HS384)).is_ok());
    assert!(matches!(
        verify(encode(CURRENT, Some("k3"), jsonwebtoken::Algorithm::HS512)).unwrap_err(),
        Error::AlgorithmNotAccepted(_)
    ));
}
