//! Django signed objects (`dumps`/`loads`, `verify_object`) in keyroll-django:
//! validly signed arbitrary payloads, compressed payloads checked against an
//! independent inflate, and decompression bombs that must stay bounded.

#![no_main]

mod common;

use std::io::{Read, Write};
use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keyroll_django::{DUMPS_SALT, Error, PayloadError, Signer, TimestampSigner, loads};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The inflate bound used by the bounded signers (the default is 1 MiB).
const LIMIT: usize = 4096;

struct Signers {
    dumps: TimestampSigner,
    bounded: TimestampSigner,
    plain_bounded: Signer,
}

static SIGNERS: LazyLock<Signers> = LazyLock::new(|| Signers {
    dumps: TimestampSigner::builder(common::keyring())
        .salt(DUMPS_SALT)
        .clock(common::now)
        .build()
        .unwrap(),
    bounded: TimestampSigner::builder(common::keyring())
        .salt(DUMPS_SALT)
        .max_decompressed_size(LIMIT)
        .clock(common::now)
        .build()
        .unwrap(),
    plain_bounded: Signer::builder(common::keyring())
        .max_decompressed_size(LIMIT)
        .clock(common::now)
        .build()
        .unwrap(),
});

/// 64 MiB of zeros, deflated (about 64 KiB): inflating it unbounded would
/// allocate 64 MiB per call.
static BOMB: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap()
});

#[derive(Arbitrary, Debug)]
enum Input {
    /// Arbitrary payload text, validly signed: base64, `.`-prefix, zlib
    /// and JSON errors must all be clean errors.
    Payload { payload: String },
    /// Arbitrary bytes deflated (optionally corrupted), validly signed:
    /// the result must match an independent inflate, within the bound.
    Compressed {
        data: Vec<u8>,
        repeat: u16,
        level: u8,
        corrupt_at: Option<u16>,
        corrupt_with: u8,
    },
    /// A decompression bomb behind a valid signature.
    Bomb { json_prefix: bool },
    /// A JSON value through `dumps`-style signing and back.
    RoundTrip { json: String, compress: bool },
}

/// What `verify_object` must return for the zlib stream `stream`, computed
/// without keyroll-django: `None` for "some error".
fn oracle(stream: &[u8], limit: usize) -> Result<Value, &'static str> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(stream)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| "zlib")?;
    if out.len() > limit {
        return Err("too large");
    }
    serde_json::from_slice(&out).map_err(|_| "json")
}

fn check_compressed(stream: &[u8]) {
    let s = &*SIGNERS;
    let payload = format!(".{}", B64.encode(stream));
    let token = s.bounded.sign(&payload).unwrap();
    let got = s.bounded.verify_object::<Value>(&token, None);
    match oracle(stream, LIMIT) {
        Ok(value) => assert_eq!(got.expect("oracle inflated it").value, value),
        Err("too large") => assert!(matches!(got, Err(Error::Encoding(PayloadError::TooLarge { limit: LIMIT }))), "{got:?}"),
        Err(_) => assert!(got.is_err(), "oracle refused, keyroll accepted: {got:?}"),
    }
    let plain_token = s.plain_bounded.sign(&payload).unwrap();
    let plain = s.plain_bounded.verify_object::<Value>(&plain_token);
    assert_eq!(plain.is_ok(), oracle(stream, LIMIT).is_ok());
}

fuzz_target!(|input: Input| {
    let s = &*SIGNERS;
    match input {
        Input::Payload { payload } => {
            let token = s.dumps.sign(&payload).unwrap();
            let a = s.dumps.verify_object::<Value>(&token, None);
            let b = loads::<Value>(&common::keyring(), &token, None, None);
            assert_eq!(a.is_ok(), b.is_ok());
            if let (Ok(a), Ok(b)) = (a, b) {
                assert_eq!(a.value, b.value);
            }
            let _ = s.bounded.verify_object::<Value>(&token, None);
        }
        Input::Compressed {
            data,
            repeat,
            level,
            corrupt_at,
            corrupt_with,
        } => {
            // Repeating makes long, highly compressible streams cheaply.
            let mut plain = Vec::with_capacity(data.len() * (usize::from(repeat % 64) + 1));
            for _ in 0..=(repeat % 64) {
                plain.extend_from_slice(&data);
            }
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(u32::from(level % 10)));
            encoder.write_all(&plain).unwrap();
            let mut stream = encoder.finish().unwrap();
            if let Some(at) = corrupt_at {
                let at = usize::from(at) % stream.len();
                stream[at] = corrupt_with;
            }
            check_compressed(&stream);
        }
        Input::Bomb { json_prefix } => {
            let mut stream = BOMB.clone();
            if json_prefix {
                // Not a valid stream any more past the header; still bounded.
                stream.truncate(stream.len() / 2);
            }
            let token = s.dumps.sign(&format!(".{}", B64.encode(&stream))).expect("the fuzz keyring serves");
            let got = s.dumps.verify_object::<Value>(&token, None);
            assert!(
                matches!(got, Err(Error::Encoding(_)) | Err(Error::Payload { .. })),
                "{got:?}"
            );
            check_compressed(&stream);
        }
        Input::RoundTrip { json, compress } => {
            let Ok(value) = serde_json::from_str::<Value>(&json) else {
                return;
            };
            let Ok(token) = s.dumps.sign_object(&value, compress) else {
                return;
            };
            let back = s
                .dumps
                .verify_object::<Value>(&token, None)
                .unwrap_or_else(|e| panic!("own object {token:?} does not load: {e}"));
            assert_eq!(back.value, value);
        }
    }
});
