//! The JOSE header and the registered claims (RFC 7519 §4.1) the verifier
//! checks, read without copying strings.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The header fields the verifier reads; others are ignored.
#[derive(Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub(crate) alg: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) kid: Option<Cow<'a, str>>,
    /// Absent is `None`; present it must be an array of names (RFC 7515
    /// §4.1.11): `"crit": null` fails to deserialize, as PyJWT refuses it.
    #[serde(default, deserialize_with = "present_array")]
    pub(crate) crit: Option<Vec<String>>,
}

/// A header field that, when present, must be an array of strings: `null`
/// is refused (serde would otherwise read it as absent).
fn present_array<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    Vec::<String>::deserialize(deserializer).map(Some)
}

/// The header this crate writes: `{"alg":…,"kid":…,"typ":"JWT"}`.
#[derive(Serialize)]
pub(crate) struct WrittenHeader<'a> {
    pub(crate) alg: &'static str,
    pub(crate) kid: &'a str,
    pub(crate) typ: &'static str,
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, integer or not;
/// fractions are dropped (rounded towards minus infinity) and values beyond
/// 64 bits saturate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumericDate(pub(crate) i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seconds;
        impl Visitor<'_> for Seconds {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumericDate (seconds since the Unix epoch)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                // `as` saturates (and JSON has no NaN).
                Ok(NumericDate(v.floor() as i64))
            }
        }
        deserializer.deserialize_any(Seconds)
    }
}

/// `aud`: one string or an array of strings.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

impl Audience<'_> {
    pub(crate) fn contains_any(&self, accepted: &[String]) -> bool {
        match self {
            Self::One(aud) => accepted.iter().any(|a| a == aud),
            Self::Many(auds) => auds.iter().any(|aud| accepted.iter().any(|a| a == aud)),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Self::Many(auds) if auds.is_empty())
    }
}

/// The registered claims the verifier checks.
#[derive(Deserialize)]
pub(crate) struct Registered<'a> {
    #[serde(default)]
    pub(crate) exp: Option<NumericDate>,
    #[serde(default)]
    pub(crate) nbf: Option<NumericDate>,
    #[serde(default)]
    pub(crate) iat: Option<NumericDate>,
    #[serde(borrow, default)]
    pub(crate) iss: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) aud: Option<Audience<'a>>,
}
