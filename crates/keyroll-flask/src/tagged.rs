//! Flask's tagged JSON (`flask.json.tag.TaggedJSONSerializer`): JSON plus
//! the Python types a session commonly holds, each written as a one-key
//! object whose key is a tag: tuples ` t`, bytes ` b`, `Markup` ` m`, UUIDs
//! ` u`, datetimes ` d`, and ` di` to escape a dict whose only key looks
//! like a tag.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::Error;

/// The keys of Flask's default tags.
const TAGS: [&str; 6] = [" di", " t", " b", " m", " u", " d"];

/// `http_date` / `email.utils.format_datetime(dt, usegmt=True)`.
const HTTP_DATE: &[FormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");

/// A value of a Flask session as Python holds it.
///
/// ```
/// use keyroll_flask::Value;
///
/// let session = Value::dict([
///     ("cart", Value::Tuple(vec![Value::from(1), Value::from(2)])),
///     ("token", Value::Bytes(b"\x00\xff".to_vec())),
/// ]);
/// assert_eq!(session.to_tagged_json().unwrap(), r#"{"cart":{" t":[1,2]},"token":{" b":"AP8="}}"#);
/// assert_eq!(Value::from_tagged_json(&session.to_tagged_json().unwrap()).unwrap(), session);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `None`.
    Null,
    /// `bool`.
    Bool(bool),
    /// `int` or `float`.
    Number(serde_json::Number),
    /// `str`.
    String(String),
    /// `list`.
    List(Vec<Value>),
    /// `tuple` (tag ` t`).
    Tuple(Vec<Value>),
    /// `dict`, keys in Flask's (sorted) order.
    Dict(BTreeMap<String, Value>),
    /// `bytes` (tag ` b`).
    Bytes(Vec<u8>),
    /// `markupsafe.Markup` (tag ` m`): HTML that is not escaped again.
    Markup(String),
    /// `uuid.UUID` (tag ` u`).
    Uuid([u8; 16]),
    /// `datetime.datetime` (tag ` d`), to the second, as Flask keeps it.
    DateTime(OffsetDateTime),
}

impl Value {
    /// A dict from `(key, value)` pairs.
    pub fn dict<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Self::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value Flask's `TaggedJSONSerializer.loads` makes of `json`.
    pub fn from_tagged_json(json: &str) -> Result<Self, Error> {
        let json: serde_json::Value =
            serde_json::from_str(json).map_err(|_| Error::Payload { what: "JSON" })?;
        Self::untag(json)
    }

    /// `TaggedJSONSerializer.dumps`: compact, ASCII-only, keys sorted, as
    /// Flask writes it in a request.
    pub fn to_tagged_json(&self) -> Result<String, Error> {
        keyroll_django::json::to_python_json(&Tagged(self)).map_err(|e| Error::Serialize(e.to_string()))
    }

    /// `_untag_scan`: untags the values of a dict or list first, then the
    /// dict itself.
    pub(crate) fn untag(json: serde_json::Value) -> Result<Self, Error> {
        use serde_json::Value as Json;
        Ok(match json {
            Json::Null => Self::Null,
            Json::Bool(b) => Self::Bool(b),
            Json::Number(n) => Self::Number(n),
            Json::String(s) => Self::String(s),
            Json::Array(items) => Self::List(items.into_iter().map(Self::untag).collect::<Result<_, _>>()?),
            Json::Object(map) => {
                let mut dict = map
                    .into_iter()
                    .map(|(k, v)| Ok((k, Self::untag(v)?)))
                    .collect::<Result<BTreeMap<_, _>, Error>>()?;
                if dict.len() != 1 {
                    return Ok(Self::Dict(dict));
                }
                let Some(tag) = TAGS.iter().find(|tag| dict.contains_key(**tag)) else {
                    return Ok(Self::Dict(dict));
                };
                let value = dict.remove(*tag).expect("the tag is the only key");
                from_tag(tag, value)?
            }
        })
    }
}

/// The Python value of `{tag: value}` (`JSONTag.to_python`).
fn from_tag(tag: &'static str, value: Value) -> Result<Value, Error> {
    let invalid = |reason| Error::Tag { tag, reason };
    let text = |value: Value| match value {
        Value::String(text) => Ok(text),
        _ => Err(invalid("not a string")),
    };
    Ok(match tag {
        " di" => match value {
            Value::Dict(inner) if inner.len() == 1 => {
                let (key, value) = inner.into_iter().next().expect("one entry");
                let mut chars = key.chars();
                chars.next_back();
                chars.next_back();
                Value::dict([(chars.as_str(), value)])
            }
            _ => return Err(invalid("not a dict of one key")),
        },
        " t" => match value {
            Value::List(items) => Value::Tuple(items),
            _ => return Err(invalid("not a list")),
        },
        " b" => Value::Bytes(STANDARD.decode(text(value)?).map_err(|_| invalid("not base64"))?),
        " m" => Value::Markup(text(value)?),
        " u" => Value::Uuid(parse_uuid(&text(value)?).ok_or_else(|| invalid("not a UUID"))?),
        " d" => {
            let at = PrimitiveDateTime::parse(&text(value)?, HTTP_DATE)
                .map_err(|_| invalid("not an HTTP date (\"Wed, 21 Oct 2015 07:28:00 GMT\")"))?;
            // email.utils.parsedate reads years below 100 as two-digit years.
            let year = match at.year() {
                year @ 69..=99 => year + 1900,
                year @ 0..=68 => year + 2000,
                year => year,
            };
            if !(1..=9999).contains(&year) {
                return Err(invalid("not a year Python represents (1 to 9999)"));
            }
            Value::DateTime(
                at.replace_year(year)
                    .map_err(|_| invalid("not a date"))?
                    .assume_utc(),
            )
        }
        _ => unreachable!("TAGS lists the tags handled here"),
    })
}

/// `uuid.UUID(text)`: 32 hex digits, hyphens, braces and a `urn:uuid:`
/// prefix allowed.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text
        .replace("urn:", "")
        .replace("uuid:", "")
        .trim_matches(|c| c == '{' || c == '}')
        .replace('-', "");
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(bytes)
}

/// Serializes a [`Value`] in tagged form (`TaggedJSONSerializer.tag`).
struct Tagged<'a>(&'a Value);

fn one_key<S: Serializer, V: Serialize + ?Sized>(
    serializer: S,
    tag: &str,
    value: &V,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(tag, value)?;
    map.end()
}

fn items<'a>(values: &'a [Value]) -> impl Serialize + 'a {
    struct Items<'a>(&'a [Value]);
    impl Serialize for Items<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
            for item in self.0 {
                seq.serialize_element(&Tagged(item))?;
            }
            seq.end()
        }
    }
    Items(values)
}

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::List(values) => items(values).serialize(serializer),
            Value::Tuple(values) => one_key(serializer, " t", &items(values)),
            Value::Dict(dict) => {
                if let Some((key, value)) = dict.iter().next()
                    && dict.len() == 1
                    && TAGS.contains(&key.as_str())
                {
                    let escaped = format!("{key}__");
                    let mut map = serializer.serialize_map(Some(1))?;
                    map.serialize_entry(" di", &EscapedDict(&escaped, value))?;
                    return map.end();
                }
                let mut map = serializer.serialize_map(Some(dict.len()))?;
                for (key, value) in dict {
                    map.serialize_entry(key, &Tagged(value))?;
                }
                map.end()
            }
            Value::Bytes(bytes) => one_key(serializer, " b", &STANDARD.encode(bytes)),
            Value::Markup(html) => one_key(serializer, " m", html),
            Value::Uuid(uuid) => {
                let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
                one_key(serializer, " u", &hex)
            }
            Value::DateTime(at) => {
                let utc = at.to_offset(UtcOffset::UTC);
                if !(1..=9999).contains(&utc.year()) {
                    return Err(serde::ser::Error::custom(
                        "Python datetimes lie in the years 1 to 9999",
                    ));
                }
                let date = utc.format(HTTP_DATE).map_err(serde::ser::Error::custom)?;
                one_key(serializer, " d", &date)
            }
        }
    }
}

/// `{key__: tagged value}`, the inside of ` di`.
struct EscapedDict<'a>(&'a str, &'a Value);

impl Serialize for EscapedDict<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        one_key(serializer, self.0, &Tagged(self.1))
    }
}

impl From<serde_json::Value> for Value {
    /// Plain JSON, with no tag interpreted (a dict `{" t": …}` stays a dict).
    fn from(json: serde_json::Value) -> Self {
        use serde_json::Value as Json;
        match json {
            Json::Null => Self::Null,
            Json::Bool(b) => Self::Bool(b),
            Json::Number(n) => Self::Number(n),
            Json::String(s) => Self::String(s),
            Json::Array(items) => Self::List(items.into_iter().map(Self::from).collect()),
            Json::Object(map) => Self::Dict(map.into_iter().map(|(k, v)| (k, Self::from(v))).collect()),
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::String(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::String(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Self::Number(number.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}
