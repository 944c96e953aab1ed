//! JSON exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it,
//! which is what Django signs: compact, every character outside printable ASCII
//! escaped as `\uXXXX` (lowercase hex, surrogate pairs beyond the BMP), floats
//! in Python's `repr` form (`1e+16`, `1e-05`, `2.0`).
//!
//! Differences that remain: Python writes `NaN`/`Infinity` where serde_json
//! writes `null`, and integers beyond 64 bits only survive in Rust as 128-bit
//! integers (in [`JsonText`] they become floats).

use std::io;

use serde::de::IgnoredAny;
use serde::{Serialize, Serializer};
use serde_json::ser::Formatter;

/// Serializes `value` as Python's compact, ASCII-only JSON.
///
/// ```
/// use keyroll_django::json::to_python_json;
///
/// let json = to_python_json(&serde_json::json!({"name": "héllo 😀", "pi": 1e16})).unwrap();
/// assert_eq!(json, r#"{"name":"h\u00e9llo \ud83d\ude00","pi":1e+16}"#);
/// ```
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        PythonFormatter,
    ))?;
    Ok(String::from_utf8(out).expect("the Python formatter writes ASCII only"))
}

/// JSON text to sign as it is, keeping the order of object keys (Python dicts
/// keep insertion order; `serde_json::Value` sorts them unless the
/// `preserve_order` feature is on). It is re-written in Python's form, so
/// `JsonText(r#"{"b": 1, "a": "é"}"#)` signs `{"b":1,"a":"\u00e9"}` as
/// `dumps(json.loads(text))` does.
///
/// ```
/// use keyroll_django::json::{JsonText, to_python_json};
///
/// assert_eq!(to_python_json(&JsonText(r#"{"b": 1, "a": [true, null]}"#)).unwrap(), r#"{"b":1,"a":[true,null]}"#);
/// assert!(to_python_json(&JsonText("{1}")).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct JsonText<'a>(pub &'a str);

impl Serialize for JsonText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Validate the whole text first: transcoding stops after the first value.
        serde_json::from_str::<IgnoredAny>(self.0).map_err(serde::ser::Error::custom)?;
        let mut deserializer = serde_json::Deserializer::from_str(self.0);
        serde_transcode::transcode(&mut deserializer, serializer)
    }
}

/// A serde_json [`Formatter`] that writes what Python's `json.dumps` with
/// `separators=(",", ":")` and `ensure_ascii=True` writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        // Python floats are doubles: an f32 prints as the double it widens to.
        self.write_f64(writer, f64::from(value))
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json already escaped `"`, `\` and C0 controls (with lowercase
        // hex, as Python does); Python also escapes DEL and everything
        // beyond ASCII.
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            writer.write_all(&bytes[start..index])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = index + ch.len_utf8();
        }
        writer.write_all(&bytes[start..])
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed
/// notation when the decimal exponent is in `-4 < e < 16`, else as
/// `d.ddde±XX`.
fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` prints the shortest round-tripping digits, as Python does.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponents are integers");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exponent + 1; // digits are 0.d1d2… × 10^point
    let mut out = String::with_capacity(digits.len() + 8);
    out.push_str(sign);
    if !(-4 < point && point <= 16) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        ));
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python_repr() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (123.0, "123.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (-2.5e-300, "-2.5e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (value, python) in cases {
            assert_eq!(python_float_repr(*value), *python, "repr({value:?})");
        }
    }

    #[test]
    fn strings_escape_like_python_ensure_ascii() {
        let text = "a\"b\\c\n\t\u{1}\u{7f}é€😀/";
        assert_eq!(
            to_python_json(text).unwrap(),
            r#""a\"b\\c\n\t\u0001\u007f\u00e9\u20ac\ud83d\ude00/""#
        );
    }

    #[test]
    fn json_text_keeps_key_order_and_rejects_trailing_garbage() {
        assert_eq!(
            to_python_json(&JsonText(r#"{"z":1, "a":{"y":2,"b":3}}"#)).unwrap(),
            r#"{"z":1,"a":{"y":2,"b":3}}"#
        );
        assert!(to_python_json(&JsonText(r#"{"a":1} x"#)).is_err());
    }
}
