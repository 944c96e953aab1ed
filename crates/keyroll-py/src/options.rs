//! The refresher and policy options of `keyroll.open` and `keyroll.rotate`:
//! the library's table (`keyroll::options::OPTIONS`), read from keyword
//! arguments. Durations are seconds (int or float), counts ints; the checks
//! are the library's, so every door refuses the same values.

use keyroll::options::{OPTIONS, OptionError, Options, RefreshOption, Unit, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyTuple};

/// `keyroll._keyroll.OPTIONS`: `(name, unit, default, doc)` per option, unit
/// `"seconds"` or `"count"`, for `keyroll.django`'s `KEYROLL` keys and the
/// tests that hold the stubs and docs to the table.
pub(crate) fn table(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    let rows = OPTIONS
        .iter()
        .map(|option| (option.name, unit_name(option.unit), option.default, option.doc));
    PyTuple::new(py, rows)
}

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "count",
        _ => "seconds",
    }
}

/// `value` as a value of `option`, or what is wrong with it (without the
/// option's name).
fn value_of(option: &RefreshOption, value: &Bound<'_, PyAny>) -> Result<Value, String> {
    let problem = |error: OptionError| match error {
        OptionError::Invalid { problem, .. } => problem,
        other => other.to_string(),
    };
    let number = !value.is_instance_of::<PyBool>();
    match option.unit {
        Unit::Count if number && value.is_instance_of::<PyInt>() => {
            let count: i64 = value.extract().map_err(|_| "is too large".to_owned())?;
            option.count(count).map_err(problem)
        }
        Unit::Count => Err(format!("must be an int, not {}", type_name(value))),
        _ if number && (value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>()) => {
            let seconds: f64 = value.extract().map_err(|_| "is too large".to_owned())?;
            option.seconds(seconds).map_err(problem)
        }
        _ => Err(format!(
            "must be a number of seconds (int or float), not {}",
            type_name(value)
        )),
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |name| name.to_string())
}

/// The keyword arguments `options` of `function` as [`Options`]: an unknown
/// name is a `TypeError` as Python's own, a bad value a `ValueError` naming
/// it; `None` keeps the default.
pub(crate) fn from_kwargs(function: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    let mut parsed = Options::new();
    for (name, value) in options.into_iter().flat_map(|options| options.iter()) {
        let name: String = name.extract()?;
        let Some(option) = RefreshOption::named(&name) else {
            return Err(PyTypeError::new_err(format!(
                "{function}() got an unexpected keyword argument '{name}'"
            )));
        };
        if value.is_none() {
            continue;
        }
        let value =
            value_of(option, &value).map_err(|problem| PyValueError::new_err(format!("{name} {problem}")))?;
        parsed
            .set(option.name, value)
            .map_err(|error| PyValueError::new_err(error.to_string()))?;
    }
    Ok(parsed)
}

/// `keyroll._keyroll.check_option(name, value)`: `None` when `value` suits
/// the option `name`, else what is wrong with it, without the name
/// ("must not be negative"), for `keyroll.django` to name the `KEYROLL` key.
/// An unknown name is a `KeyError`.
#[pyfunction]
pub(crate) fn check_option(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let option =
        RefreshOption::named(name).ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_owned()))?;
    Ok(value_of(option, value).err())
}
