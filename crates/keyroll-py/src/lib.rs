//! The native half of the `keyroll` Python package (`keyroll._keyroll`).
//!
//! A [`KeyRing`](ring::KeyRing) owns a tokio runtime whose threads run a
//! keyroll refresher: refreshing never needs the GIL. Readers load the key
//! set lock-free. The pure-Python half (`python/keyroll/__init__.py`) adds
//! `keyroll.open` and the fork hooks.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

mod formats;
mod ops;
mod options;
mod ring;
mod settings;

create_exception!(
    _keyroll,
    KeyrollError,
    PyException,
    "A keyroll failure: no usable key set, a closed key ring, a configuration error."
);
create_exception!(
    _keyroll,
    FailedClosed,
    KeyrollError,
    "The key ring has failed closed: the store revoked the signing key, every key is past its expiry, \
     or the store has not confirmed the keys for longer than fail_closed_after. Nothing signs or \
     verifies until the store offers a usable key again."
);
create_exception!(
    _keyroll,
    BadSignature,
    KeyrollError,
    "A signed value that does not verify (like django.core.signing.BadSignature)."
);
create_exception!(
    _keyroll,
    SignatureExpired,
    BadSignature,
    "A valid signature older than the allowed maximum age."
);
create_exception!(
    _keyroll,
    InvalidToken,
    KeyrollError,
    "A Fernet token that no accepted key decrypts, or that has expired."
);

/// The `keyroll._keyroll` extension module.
#[pymodule]
fn _keyroll(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("KeyrollError", py.get_type::<KeyrollError>())?;
    m.add("FailedClosed", py.get_type::<FailedClosed>())?;
    m.add("BadSignature", py.get_type::<BadSignature>())?;
    m.add("SignatureExpired", py.get_type::<SignatureExpired>())?;
    m.add("InvalidToken", py.get_type::<InvalidToken>())?;
    m.add_function(wrap_pyfunction!(ring::open, m)?)?;
    m.add_function(wrap_pyfunction!(ops::rotate, m)?)?;
    m.add_function(wrap_pyfunction!(options::check_option, m)?)?;
    m.add("OPTIONS", options::table(py)?)?;
    m.add_class::<ring::KeyRing>()?;
    m.add_class::<formats::Verified>()?;
    m.add_class::<formats::DjangoSigner>()?;
    m.add_class::<formats::NativeSigner>()?;
    m.add_class::<formats::Fernet>()?;
    m.add_class::<settings::LiveSetting>()?;
    m.add_function(wrap_pyfunction!(settings::django_settings, m)?)?;
    Ok(())
}
