//! The encoding pieces Django's signed objects share with other Python
//! formats built the same way (itsdangerous, hence Flask's session cookie):
//! lenient base64url, zlib with a bound on the inflated size, and whole Unix
//! seconds. Public so those formats (`keyroll-flask`) reuse them instead of
//! copying them.

use std::io::{Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD as B64};
use keyroll_core::kit::Rejection;

/// Python's `urlsafe_b64decode` after re-padding, as Django's `b64_decode`
/// and itsdangerous' `base64_decode` use it: base64url, padding optional,
/// lenient about unused trailing bits (the payload is covered by the
/// signature anyway).
pub const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Why [`inflate`] refused a zlib stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InflateError {
    /// Not a valid zlib stream.
    Corrupt,
    /// The stream inflates to more than the bound.
    TooLarge,
}

/// Python's `zlib.compress(data)`: level 6 (`Z_DEFAULT_COMPRESSION`), so the
/// bytes are the same as Python's.
pub fn compress_zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len()), flate2::Compression::new(6));
    encoder.write_all(data).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// `zlib.decompress(data)`, reading at most `limit` inflated bytes: a
/// decompression bomb costs `limit` bytes of memory, never more.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    flate2::read::ZlibDecoder::new(data)
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| InflateError::Corrupt)?;
    if out.len() > limit {
        return Err(InflateError::TooLarge);
    }
    Ok(out)
}

/// Why [`decode_payload`] refused a payload: the encoding layer every format
/// built on it shares, nested in Django's and Flask's errors
/// (`Error::Encoding`). Only a value with a valid signature gets this far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Not base64url.
    #[error("the signed payload is not valid base64")]
    Base64,
    /// Marked compressed, but not a valid zlib stream.
    #[error("the signed payload is not valid zlib data")]
    Zlib,
    /// Inflates to more than the bound.
    #[error(
        "the compressed payload inflates to more than {limit} bytes; \
         raise the bound with max_decompressed_size() if such payloads are legitimate"
    )]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
}

impl PayloadError {
    /// `too_large` or `payload`, as metrics label it.
    pub fn reason(self) -> &'static str {
        self.rejection().reason()
    }

    /// The kind of refusal in the words every format shares.
    pub fn rejection(self) -> Rejection {
        match self {
            Self::TooLarge { .. } => Rejection::TooLarge,
            _ => Rejection::Payload,
        }
    }
}

/// The payload of a signed object (Django's `sign_object`, itsdangerous'
/// `URLSafeSerializer`): `data` in base64url without padding, or, when
/// `compress` is asked and zlib saves at least 2 bytes, `.` and the
/// compressed data in base64url.
pub fn encode_payload(data: &[u8], compress: bool) -> String {
    if compress {
        let compressed = compress_zlib(data);
        if compressed.len() + 1 < data.len() {
            let mut out = String::with_capacity(1 + compressed.len().div_ceil(3) * 4);
            out.push('.');
            B64.encode_string(&compressed, &mut out);
            return out;
        }
    }
    B64.encode(data)
}

/// The data of a payload [`encode_payload`] wrote: strip `.`, decode
/// (leniently), inflate to at most `limit` bytes.
pub fn decode_payload(payload: &str, limit: usize) -> Result<Vec<u8>, PayloadError> {
    let (compressed, text) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let data = LENIENT_B64.decode(text).map_err(|_| PayloadError::Base64)?;
    if !compressed {
        return Ok(data);
    }
    inflate(&data, limit).map_err(|error| match error {
        InflateError::TooLarge => PayloadError::TooLarge { limit },
        InflateError::Corrupt => PayloadError::Zlib,
    })
}

/// Whole seconds since the Unix epoch, rounded down like `int(time.time())`
/// for times after 1970.
pub fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The moment `seconds` after the Unix epoch (before it when negative),
/// saturating at the epoch where `SystemTime` cannot represent it.
pub fn time_of(seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    let at = if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    at.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflate_stops_at_the_bound() {
        let stream = compress_zlib(&[b'a'; 10_000]);
        assert_eq!(inflate(&stream, 10_000).unwrap().len(), 10_000);
        assert_eq!(inflate(&stream, 9_999), Err(InflateError::TooLarge));
        assert_eq!(inflate(b"not zlib", 100), Err(InflateError::Corrupt));
    }

    #[test]
    fn payloads_compress_only_when_it_saves_two_bytes() {
        assert_eq!(encode_payload(b"{}", true), "e30");
        let long = [b'a'; 100];
        let compressed = encode_payload(&long, true);
        assert!(compressed.starts_with('.'));
        assert_eq!(decode_payload(&compressed, 100).unwrap(), long);
        assert_eq!(
            decode_payload(&compressed, 99),
            Err(PayloadError::TooLarge { limit: 99 })
        );
        assert_eq!(decode_payload(&encode_payload(&long, false), 1).unwrap(), long);
        assert_eq!(decode_payload("!", 1), Err(PayloadError::Base64));
        assert_eq!(decode_payload(".e30", 1), Err(PayloadError::Zlib));
    }

    #[test]
    fn seconds_round_trip_and_saturate() {
        assert_eq!(unix_seconds(time_of(1_700_000_000)), 1_700_000_000);
        assert_eq!(unix_seconds(time_of(-5)), -5);
        assert_eq!(
            time_of(i64::MAX),
            UNIX_EPOCH
                .checked_add(Duration::from_secs(i64::MAX as u64))
                .unwrap_or(UNIX_EPOCH)
        );
    }
}
