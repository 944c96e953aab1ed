//! Flask session cookies in keyroll-flask: arbitrary text through `load`;
//! validly signed arbitrary payloads and timestamps (base64, `.`-prefix,
//! zlib, tagged JSON, the age check); zlib bombs; tagged-JSON round trips;
//! tampering.

#![no_main]

mod common;

use std::io::{Read, Write};
use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use keyroll_flask::{Error, PayloadError, SecureCookieSessions, Value};
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;

/// The inflate bound of the bounded reader (the default is 1 MiB).
const LIMIT: usize = 4096;

struct Readers {
    main: SecureCookieSessions,
    bounded: SecureCookieSessions,
    old: SecureCookieSessions,
}

static READERS: LazyLock<Readers> = LazyLock::new(|| Readers {
    main: SecureCookieSessions::builder(common::keyring()).clock(common::now).build(),
    bounded: SecureCookieSessions::builder(common::keyring())
        .max_decompressed_size(LIMIT)
        .clock(common::now)
        .build(),
    old: SecureCookieSessions::builder(common::old_keyring()).clock(common::now).build(),
});

#[derive(Arbitrary, Debug)]
enum Input {
    /// A `Cookie` header value: refused cleanly, never verified.
    Load { cookie: String },
    /// Any payload and timestamp text, signed as itsdangerous signs them.
    Signed { payload: String, timestamp: String },
    /// Arbitrary bytes deflated (optionally corrupted), validly signed: the
    /// result agrees with an independent bounded inflate.
    Compressed {
        data: Vec<u8>,
        repeat: u16,
        corrupt_at: Option<u16>,
        corrupt_with: u8,
    },
    /// Tagged JSON through `from_tagged_json`, `save` and `load`; a changed
    /// byte never verifies.
    RoundTrip {
        json: String,
        fallback: bool,
        tamper_at: u16,
        tamper_with: u8,
    },
}

/// itsdangerous' signature with the current key: HMAC-SHA1 keyed with
/// HMAC-SHA1(secret, "cookie-session").
fn sign(stamped: &str) -> String {
    let mut derive = <Hmac<Sha1> as Mac>::new_from_slice(common::CURRENT.as_bytes()).unwrap();
    derive.update(b"cookie-session");
    let key = derive.finalize().into_bytes();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&key).unwrap();
    mac.update(stamped.as_bytes());
    format!("{stamped}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn now_stamp() -> String {
    B64.encode(common::NOW_SECS.to_be_bytes().trim_ascii_start())
}

fuzz_target!(|input: Input| {
    let r = &*READERS;
    match input {
        Input::Load { cookie } => {
            assert!(r.main.load(&cookie).is_err(), "{cookie:?} verified");
        }
        Input::Signed { payload, timestamp } => {
            let cookie = sign(&format!("{payload}.{timestamp}"));
            let _ = r.main.load(&cookie);
            let _ = r.bounded.load(&cookie);
            // With a valid timestamp the payload decides alone.
            let cookie = sign(&format!("{payload}.{}", now_stamp()));
            match r.main.load(&cookie) {
                Ok(verified) => assert_eq!(verified.timestamp, Some(common::now())),
                Err(error) => assert!(!error.is_bad_signature(), "{cookie:?}: {error:?}"),
            }
        }
        Input::Compressed {
            data,
            repeat,
            corrupt_at,
            corrupt_with,
        } => {
            let mut plain = Vec::with_capacity(data.len() * (usize::from(repeat % 64) + 1));
            for _ in 0..=(repeat % 64) {
                plain.extend_from_slice(&data);
            }
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(&plain).unwrap();
            let mut stream = encoder.finish().unwrap();
            if let Some(at) = corrupt_at {
                let at = usize::from(at) % stream.len();
                stream[at] = corrupt_with;
            }
            let mut inflated = Vec::new();
            let oracle = flate2::read::ZlibDecoder::new(&stream[..])
                .take(LIMIT as u64 + 1)
                .read_to_end(&mut inflated);
            let cookie = sign(&format!(".{}.{}", B64.encode(&stream), now_stamp()));
            let got = r.bounded.load(&cookie);
            match oracle {
                Err(_) => assert!(got.is_err()),
                Ok(_) if inflated.len() > LIMIT => {
                    assert_eq!(got.unwrap_err(), Error::Encoding(PayloadError::TooLarge { limit: LIMIT }))
                }
                Ok(_) => match serde_json::from_slice::<serde_json::Value>(&inflated) {
                    Err(_) => assert_eq!(got.unwrap_err(), Error::Payload { what: "JSON" }),
                    Ok(json) => match Value::from_tagged_json(&json.to_string()) {
                        Ok(value) => assert_eq!(got.expect("the oracle decoded it").value, value),
                        Err(error) => assert_eq!(got.unwrap_err(), error),
                    },
                },
            }
        }
        Input::RoundTrip {
            json,
            fallback,
            tamper_at,
            tamper_with,
        } => {
            let Ok(value) = Value::from_tagged_json(&json) else {
                return;
            };
            let tagged = value.to_tagged_json().expect("a decoded value encodes");
            assert_eq!(Value::from_tagged_json(&tagged).expect("own tagged JSON decodes"), value);
            let writer = if fallback { &r.old } else { &r.main };
            let cookie = writer.save(&value).expect("a decoded value saves");
            let loaded = r.main.load(&cookie).unwrap_or_else(|e| panic!("own cookie {cookie:?} refused: {e}"));
            assert_eq!(loaded.value, value);
            assert_eq!(loaded.needs_resign(), fallback);
            if let Some(tampered) = common::tampered(&cookie, tamper_at, tamper_with) {
                assert!(r.main.load(&tampered).is_err(), "{tampered:?} verified");
            }
        }
    }
});
