//! The reader of one field of a JSON secret, which wipes what it parsed.

use std::fmt;

use serde_json::Value;
use zeroize::Zeroize;

use crate::KeyMaterial;

/// A JSON secret parsed for one field: every string in it is wiped from
/// memory when it is dropped, and errors name fields and types, never values.
///
/// ```
/// use keyroll_core::remote::JsonSecret;
///
/// let secret = JsonSecret::parse(r#"{"key":"k3y-0123456789","user":"app"}"#)?;
/// assert_eq!(secret.field("key")?.expose_secret(), b"k3y-0123456789");
/// assert!(secret.field("user").is_ok());
/// let problem = JsonSecret::parse(r#"{"key":7}"#)?.field("key").unwrap_err();
/// assert_eq!(problem.to_string(), "field `key` is a number, not a string");
/// # Ok::<(), keyroll_core::remote::FieldProblem>(())
/// ```
pub struct JsonSecret(Value);

impl JsonSecret {
    /// Parses `text`. The parser's own message, which may quote the text, is
    /// not kept: only the position.
    ///
    /// # Errors
    /// [`FieldProblem::NotJson`].
    pub fn parse(text: &str) -> Result<Self, FieldProblem> {
        serde_json::from_str(text)
            .map(Self)
            .map_err(|e| FieldProblem::NotJson {
                line: e.line(),
                column: e.column(),
            })
    }

    /// Takes a document parsed elsewhere (such as a client library's answer).
    pub fn from_value(value: Value) -> Self {
        Self(value)
    }

    /// The document.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The document, to change before it is written back (it is still
    /// wiped on drop).
    pub fn value_mut(&mut self) -> &mut Value {
        &mut self.0
    }

    /// The string in `field` of the object, as key material (possibly empty:
    /// emptiness is the caller's rule).
    ///
    /// # Errors
    /// [`FieldProblem::NotObject`], [`FieldProblem::Missing`] or
    /// [`FieldProblem::NotString`].
    pub fn field(&self, field: &str) -> Result<KeyMaterial, FieldProblem> {
        let Value::Object(map) = &self.0 else {
            return Err(FieldProblem::NotObject(type_name(&self.0)));
        };
        match map.get(field) {
            Some(Value::String(text)) => Ok(KeyMaterial::new(text.as_bytes())),
            Some(other) => Err(FieldProblem::NotString {
                field: field.to_owned(),
                found: type_name(other),
            }),
            None => Err(FieldProblem::Missing {
                field: field.to_owned(),
                fields: map.keys().cloned().collect(),
            }),
        }
    }
}

impl Drop for JsonSecret {
    fn drop(&mut self) {
        fn wipe(value: &mut Value) {
            match value {
                Value::String(text) => text.zeroize(),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(fields) => fields.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

impl fmt::Debug for JsonSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JsonSecret(..)")
    }
}

/// Why [`JsonSecret`] found no key. The message names fields and JSON types,
/// never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// The text is not JSON.
    #[error("is not JSON (line {line}, column {column})")]
    NotJson {
        /// Line of the first error.
        line: usize,
        /// Column of the first error.
        column: usize,
    },
    /// The document is not an object; it is this JSON type.
    #[error("is JSON {0}, not an object with fields")]
    NotObject(&'static str),
    /// The object has no such field.
    #[error("has no field `{field}` (fields: {})", fields.join(", "))]
    Missing {
        /// The field asked for.
        field: String,
        /// The fields it has.
        fields: Vec<String>,
    },
    /// The field is not a string.
    #[error("field `{field}` is {found}, not a string")]
    NotString {
        /// The field asked for.
        field: String,
        /// Its JSON type.
        found: &'static str,
    },
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
