//! `keyroll.rotate` and `KeyRing.rotate`: the library's rotation
//! (`keyroll::ops::rotate`, what `keyroll rotate` runs), never a subprocess.

use std::time::SystemTime;

use keyroll::ops::{self, OpError, RotateFailure, RotateOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::ring::{Config, open_error, runtime};

/// Publishes a new key in the store ``uri`` names, as ``keyroll rotate`` does
/// (the same Rust code): ``chars`` characters of Django's alphabet or
/// ``bytes`` random bytes (base64); by default the form of the key the store
/// serves (a Fernet key makes a Fernet key, else 50 characters). ``promote``
/// makes it the store's current version, ``disable_old`` disables what the
/// policy has retired. The other options are ``keyroll.open``'s: they decide
/// when the key signs and what is retired.
///
/// Returns ``{"id", "fingerprint", "promoted", "role", "signs_from",
/// "disabled", "steps"}`` (``steps``: the lines ``keyroll rotate`` prints).
/// Raises ``ValueError`` for a weak or empty key (nothing is published) and
/// ``KeyrollError`` when the store refuses or fails, naming any step already
/// done (its ``kind``: ``config``, ``keys`` or ``unavailable``, as ``open``'s).
#[pyfunction]
#[pyo3(signature = (uri, *, chars=None, bytes=None, promote=false, disable_old=false, **options))]
pub(crate) fn rotate<'py>(
    py: Python<'py>,
    uri: &str,
    chars: Option<usize>,
    bytes: Option<usize>,
    promote: bool,
    disable_old: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let config = Config::new("rotate", uri, options)?;
    rotate_config(py, &config, chars, bytes, promote, disable_old)
}

/// Rotates the store of `config` with its policy; the result as a dict:
/// `id`, `fingerprint`, `promoted`, `role`, `signs_from` (Unix seconds or
/// None), `disabled` and `steps` (the lines `keyroll rotate` prints).
pub(crate) fn rotate_config<'py>(
    py: Python<'py>,
    config: &Config,
    chars: Option<usize>,
    bytes: Option<usize>,
    promote: bool,
    disable_old: bool,
) -> PyResult<Bound<'py, PyDict>> {
    // A key refused (nothing was published) is a ValueError, the store's
    // refusal or failure a KeyrollError of its kind.
    let raise = |failure: RotateFailure| match failure.error {
        OpError::KeyGen(_) => PyValueError::new_err(failure.to_string()),
        _ => open_error(py, failure.error.kind().as_str(), failure.to_string()),
    };
    let options = RotateOptions::asked(chars, bytes, promote, disable_old).map_err(raise)?;
    let builder = config
        .builder()
        .map_err(|e| open_error(py, "config", e.to_string()))?;
    let runtime = runtime()?;
    let (rotation, steps) = py
        .detach(|| runtime.block_on(ops::rotate_collected(&builder, &options)))
        .map_err(raise)?;
    let unix = |at: SystemTime| {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64())
    };
    let dict = PyDict::new(py);
    dict.set_item("id", &rotation.id)?;
    dict.set_item("fingerprint", &rotation.fingerprint)?;
    dict.set_item("promoted", rotation.promoted)?;
    dict.set_item("role", rotation.role.map(|role| role.to_string()))?;
    dict.set_item("signs_from", rotation.signs_from.map(unix))?;
    dict.set_item("disabled", rotation.disabled)?;
    dict.set_item("steps", steps.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    Ok(dict)
}
