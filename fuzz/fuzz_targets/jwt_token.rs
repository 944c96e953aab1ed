//! JWTs in keyroll-jwt: arbitrary text through `verify`; validly signed
//! arbitrary headers and payloads (so the header, `alg`/`kid`/`crit` and
//! claim checks are reached past the MAC); round trips from the current and
//! a fallback key; tampering.

#![no_main]

mod common;

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use keyroll_core::Role;
use keyroll_jwt::{Algorithm, Error, Signer, WithoutKid};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::Sha256;

struct Signers {
    main: Signer,
    strict: Signer,
    old: Signer,
}

static SIGNERS: LazyLock<Signers> = LazyLock::new(|| Signers {
    main: Signer::builder(common::keyring())
        .accept_algorithm(Algorithm::Hs512)
        .clock(common::now)
        .build(),
    strict: Signer::builder(common::keyring())
        .without_kid(WithoutKid::Refuse)
        .audience("api")
        .issuer("me")
        .clock(common::now)
        .build(),
    old: Signer::builder(common::old_keyring()).clock(common::now).build(),
});

#[derive(Arbitrary, Debug)]
enum Input {
    /// Text from an `Authorization` header: refused cleanly, never verified.
    Verify { token: String },
    /// Any header and payload bytes, HS256-signed with the current or the
    /// fallback key: the parsers behind the MAC.
    Signed { header: String, payload: Vec<u8>, fallback: bool },
    /// A JSON object of claims through `sign` and back; a changed byte never verifies.
    RoundTrip {
        claims: String,
        fallback: bool,
        tamper_at: u16,
        tamper_with: u8,
    },
}

fn mac(key: &str, message: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

fuzz_target!(|input: Input| {
    let s = &*SIGNERS;
    match input {
        Input::Verify { token } => {
            assert!(s.main.verify::<Value>(&token).is_err(), "{token:?} verified");
            assert!(s.strict.verify::<Value>(&token).is_err(), "{token:?} verified");
        }
        Input::Signed {
            header,
            payload,
            fallback,
        } => {
            let key = if fallback { common::FALLBACK } else { common::CURRENT };
            let signed = format!("{}.{}", B64.encode(&header), B64.encode(&payload));
            let token = format!("{signed}.{}", mac(key, &signed));
            let result = s.main.verify::<Value>(&token);
            if let Ok(verified) = &result {
                // Only an HS256 header with an accepted kid (or none) and an
                // object of claims with a live exp gets here.
                let header: Value = serde_json::from_str(&header).expect("a verified header is JSON");
                assert_eq!(header["alg"], "HS256");
                assert!(header.get("crit").is_none_or(Value::is_null));
                assert!(verified.value.is_object());
                assert!(verified.value["exp"].is_number());
                let expected = if fallback { ("v1", Role::Fallback) } else { ("v2", Role::Current) };
                assert_eq!((&*verified.key.id, verified.key.role), expected);
            } else if token.len() <= keyroll_jwt::DEFAULT_MAX_TOKEN_LEN {
                assert!(!matches!(result, Err(Error::Stale)));
            }
            let _ = s.strict.verify::<Value>(&token);
        }
        Input::RoundTrip {
            claims,
            fallback,
            tamper_at,
            tamper_with,
        } => {
            let Ok(Value::Object(mut claims)) = serde_json::from_str::<Value>(&claims) else {
                return;
            };
            claims.insert("exp".into(), (common::NOW_SECS + 60).into());
            claims.remove("nbf");
            claims.remove("iat");
            claims.remove("aud");
            let claims = Value::Object(claims);
            let signer = if fallback { &s.old } else { &s.main };
            // `iss` is the one registered claim left whose type the fuzzer
            // chooses: a wrong one is refused at signing, never signed.
            let iss_wrong = claims.get("iss").is_some_and(|iss| !iss.is_string());
            let token = match signer.sign(&claims) {
                Ok(token) => {
                    assert!(!iss_wrong, "{claims} signed with a non-string iss");
                    token
                }
                Err(Error::Serialize(_)) if iss_wrong => return,
                Err(error) => panic!("{claims} refused at signing: {error}"),
            };
            match s.main.verify::<Value>(&token) {
                Ok(verified) => {
                    assert_eq!(verified.value, claims);
                    assert_eq!(verified.needs_resign(), fallback);
                }
                Err(Error::TooLarge { .. }) => assert!(token.len() > keyroll_jwt::DEFAULT_MAX_TOKEN_LEN),
                Err(error) => panic!("own token {token:?} refused: {error}"),
            }
            if let Some(tampered) = common::tampered(&token, tamper_at, tamper_with) {
                assert!(s.main.verify::<Value>(&tampered).is_err(), "{tampered:?} verified");
            }
        }
    }
});
