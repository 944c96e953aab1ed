//! The refresher and policy options of `keyroll.open`: the library's table
//! (`keyroll::options::OPTIONS`) under camelCase names, durations in seconds.
//! The checks are the library's, so every door refuses the same values.

use keyroll::options::{OPTIONS, OptionError, Options, RefreshOption, Unit, Value};
use napi_derive::napi;

use crate::errors::{Code, Result, error};

/// `fail_closed_after` as `failClosedAfter`.
pub(crate) fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// One entry of the table, for `index.js` and `index.d.ts`.
#[napi(object)]
pub struct OptionRow {
    /// camelCase: `failClosedAfter`.
    pub name: String,
    /// `seconds` or `count`.
    pub unit: String,
    /// The default, in words.
    pub default: String,
    /// What it does.
    pub doc: String,
}

/// The library's option table under the names `keyroll.open` takes.
#[napi]
pub fn option_table() -> Vec<OptionRow> {
    OPTIONS
        .iter()
        .map(|option| OptionRow {
            name: camel(option.name),
            unit: match option.unit {
                Unit::Count => "count",
                _ => "seconds",
            }
            .to_owned(),
            default: option.default.to_owned(),
            doc: option.doc.to_owned(),
        })
        .collect()
}

/// An option as `index.js` passes it: a camelCase name and a number (it
/// refuses anything that is not a number before calling).
#[napi(object)]
pub struct NamedValue {
    pub name: String,
    pub value: f64,
}

fn value_of(option: &RefreshOption, value: f64) -> std::result::Result<Value, OptionError> {
    match option.unit {
        Unit::Count if value.fract() != 0.0 || !value.is_finite() => Err(OptionError::Invalid {
            name: option.name,
            problem: format!("must be a whole number, not {value}"),
        }),
        // Whole and finite: the cast saturates at i64's bounds, which the
        // table's check refuses (negative) or accepts as the count it is.
        Unit::Count => option.count(value as i64),
        _ => option.seconds(value),
    }
}

/// `pairs` as [`Options`]: an unknown name or a bad value is a `config`
/// error naming the option as JavaScript wrote it.
pub(crate) fn parse(pairs: &[NamedValue]) -> Result<Options> {
    let mut options = Options::new();
    for pair in pairs {
        let Some(option) = OPTIONS.iter().find(|option| camel(option.name) == pair.name) else {
            let names: Vec<String> = OPTIONS.iter().map(|option| camel(option.name)).collect();
            return Err(error(
                Code::Config,
                format!(
                    "unknown option `{}`; the options are {}",
                    pair.name,
                    names.join(", ")
                ),
            ));
        };
        let refused = |e: OptionError| match e {
            OptionError::Invalid { problem, .. } => error(Code::Config, format!("{} {problem}", pair.name)),
            other => error(Code::Config, other.to_string()),
        };
        let value = value_of(option, pair.value).map_err(refused)?;
        options.set(option.name, value).map_err(refused)?;
    }
    Ok(options)
}

/// What tells two `open` calls apart: rings of one process opened with the
/// same URI and the same options share one refresher.
pub(crate) fn identity(uri: &str, options: &Options) -> (String, Vec<Option<Value>>) {
    (
        uri.to_owned(),
        OPTIONS.iter().map(|option| options.get(option.name)).collect(),
    )
}
