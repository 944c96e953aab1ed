//! Django-format, native and Fernet signers over a `KeyRing`, with the
//! Rust implementations doing the work.
//!
//! Each holds its Rust signer bound to the key ring's current keyring and
//! rebuilds it only when that keyring object changes (after a fork); the Rust
//! signers derive their keys once per key-set generation.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwapOption, Guard};
use keyroll::django::json::JsonText;
use keyroll::django::{self as django, Algorithm};
use keyroll::fernet::{DecryptError, Derive, Encrypter};
use keyroll::raw::kit::Rejection;
use keyroll::{Keyring, Role, VerifiedBy, VerifyError};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use serde_json::value::RawValue;

use crate::ring::{Shared, failed_closed, seconds};
use crate::{BadSignature, FailedClosed, InvalidToken, KeyrollError, SignatureExpired};

/// A Rust signer bound to one keyring object, tagged with its epoch.
struct Epoch<T> {
    epoch: u64,
    keyring: Keyring,
    signer: T,
}

/// The Rust signer for the key ring's current keyring: one lock-free load
/// and a compare per call; rebuilt by `build` only after the keyring object
/// changed. Raises `KeyrollError` once the key ring is closed, and
/// `FailedClosed` while the keyring serves no key (the core's rule: nothing
/// signs, nothing verifies).
fn bound<T>(
    shared: &Shared,
    slot: &ArcSwapOption<Epoch<T>>,
    build: impl FnOnce(Keyring) -> PyResult<T>,
) -> PyResult<Guard<Option<Arc<Epoch<T>>>>> {
    let epoch = shared.epoch.load(Ordering::Acquire);
    let cached = slot.load();
    if epoch != 0 && cached.as_ref().is_some_and(|c| c.epoch == epoch) {
        return serving(cached);
    }
    drop(cached);
    let live = shared.live()?;
    let live = live.as_ref().expect("checked open");
    slot.store(Some(Arc::new(Epoch {
        epoch: live.epoch,
        keyring: live.keyring.clone(),
        signer: build(live.keyring.clone())?,
    })));
    serving(slot.load())
}

fn serving<T>(bound: Guard<Option<Arc<Epoch<T>>>>) -> PyResult<Guard<Option<Arc<Epoch<T>>>>> {
    if let Some(epoch) = bound.as_ref() {
        epoch
            .keyring
            .serving_at(SystemTime::now())
            .map_err(failed_closed)?;
    }
    Ok(bound)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Current => "current",
        Role::Pending => "pending",
        Role::Fallback => "fallback",
        _ => "retired",
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A verified value with the key that verified it.
#[pyclass(module = "keyroll", frozen)]
#[derive(Debug)]
pub struct Verified {
    value: Py<PyAny>,
    key: VerifiedBy,
    timestamp: Option<SystemTime>,
}

impl Verified {
    fn new(value: Py<PyAny>, key: VerifiedBy, timestamp: Option<SystemTime>) -> Self {
        Self {
            value,
            key,
            timestamp,
        }
    }
}

#[pymethods]
impl Verified {
    /// The value that was signed.
    #[getter]
    fn value(&self, py: Python<'_>) -> Py<PyAny> {
        self.value.clone_ref(py)
    }

    /// The store's id of the key that verified.
    #[getter]
    fn key_id(&self) -> &str {
        &self.key.id
    }

    /// Its role when it verified: `current`, `pending` or `fallback`.
    #[getter]
    fn role(&self) -> &'static str {
        role_name(self.key.role)
    }

    /// True when a key other than the current one verified: sign the value
    /// again and hand out the new token.
    #[getter]
    fn needs_resign(&self) -> bool {
        self.key.role != Role::Current
    }

    /// When it was signed (Unix seconds), for timestamped tokens.
    #[getter]
    fn timestamp(&self) -> Option<f64> {
        self.timestamp.map(unix_seconds)
    }

    fn __repr__(&self) -> String {
        format!(
            "<keyroll.Verified by {} key {}>",
            role_name(self.key.role),
            self.key.id
        )
    }
}

/// A format's error as a Python exception, decided by the core's kind of
/// refusal ([`Rejection`]) as in every binding: `FailedClosed` while the
/// keyring serves nothing (verifying or signing), the format's `expired` and
/// `untrusted` classes for a token, `KeyrollError` for what refuses no token.
fn refused(
    rejection: Option<Rejection>,
    message: String,
    expired: fn(String) -> PyErr,
    untrusted: fn(String) -> PyErr,
) -> PyErr {
    match rejection {
        Some(Rejection::Stale) => FailedClosed::new_err(message),
        Some(Rejection::Expired) => expired(message),
        Some(_) => untrusted(message),
        None => KeyrollError::new_err(message),
    }
}

/// Django's errors: `SignatureExpired`, `BadSignature` for any token that is
/// not to be trusted.
fn django_error(error: django::Error) -> PyErr {
    refused(
        error.rejection(),
        error.to_string(),
        SignatureExpired::new_err,
        BadSignature::new_err,
    )
}

fn native_error(error: VerifyError) -> PyErr {
    refused(
        Some(error.rejection()),
        error.to_string(),
        SignatureExpired::new_err,
        BadSignature::new_err,
    )
}

fn max_age_of(max_age: Option<f64>) -> PyResult<Option<Duration>> {
    max_age.map(|age| seconds("max_age", age)).transpose()
}

enum DjangoKind {
    Plain(django::Signer),
    Timestamp(django::TimestampSigner),
}

#[derive(Debug, Clone)]
struct DjangoOptions {
    salt: Option<String>,
    timestamp: bool,
    separator: String,
    algorithm: Algorithm,
}

impl DjangoOptions {
    fn build(&self, keyring: Keyring) -> PyResult<DjangoKind> {
        let config = |e: django::ConfigError| PyValueError::new_err(e.to_string());
        macro_rules! configure {
            ($builder:expr) => {{
                let mut builder = $builder
                    .separator(self.separator.clone())
                    .algorithm(self.algorithm);
                if let Some(salt) = &self.salt {
                    builder = builder.salt(salt.clone());
                }
                builder.build().map_err(config)?
            }};
        }
        Ok(if self.timestamp {
            DjangoKind::Timestamp(configure!(django::TimestampSigner::builder(keyring)))
        } else {
            DjangoKind::Plain(configure!(django::Signer::builder(keyring)))
        })
    }
}

/// Django's `django.core.signing.Signer` / `TimestampSigner` over a key
/// ring: same tokens, every verifying key tried (current, pending,
/// fallbacks), keys derived once per key-set generation.
#[pyclass(module = "keyroll", frozen)]
pub struct DjangoSigner {
    shared: Arc<Shared>,
    options: DjangoOptions,
    bound: ArcSwapOption<Epoch<DjangoKind>>,
}

impl DjangoSigner {
    pub(crate) fn new(
        shared: Arc<Shared>,
        salt: Option<String>,
        timestamp: bool,
        separator: &str,
        algorithm: &str,
    ) -> PyResult<Self> {
        let algorithm = Algorithm::from_str(algorithm).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let options = DjangoOptions {
            salt,
            timestamp,
            separator: separator.to_owned(),
            algorithm,
        };
        let signer = Self {
            shared,
            options,
            bound: ArcSwapOption::empty(),
        };
        // Fails now, not at first use, on an unsafe separator.
        signer.signer()?;
        Ok(signer)
    }

    fn signer(&self) -> PyResult<Guard<Option<Arc<Epoch<DjangoKind>>>>> {
        bound(&self.shared, &self.bound, |keyring| self.options.build(keyring))
    }

    fn check<'t>(&self, token: &'t str, max_age: Option<f64>) -> PyResult<keyroll::Verified<&'t str>> {
        let max_age = max_age_of(max_age)?;
        let signer = self.signer()?;
        match (&signer.as_ref().expect("bound").signer, max_age) {
            (DjangoKind::Plain(signer), None) => signer.verify(token),
            (DjangoKind::Plain(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "max_age needs a timestamped signer: django_signer(..., timestamp=True)",
                ));
            }
            (DjangoKind::Timestamp(signer), max_age) => signer.verify(token, max_age),
        }
        .map_err(django_error)
    }
}

#[pymethods]
impl DjangoSigner {
    /// The salt in use.
    #[getter]
    fn salt(&self) -> PyResult<String> {
        let signer = self.signer()?;
        Ok(match &signer.as_ref().expect("bound").signer {
            DjangoKind::Plain(signer) => signer.salt().to_owned(),
            DjangoKind::Timestamp(signer) => signer.salt().to_owned(),
        })
    }

    /// `value:signature` (or `value:timestamp:signature`) with the current key.
    fn sign(&self, value: &str) -> PyResult<String> {
        let signer = self.signer()?;
        match &signer.as_ref().expect("bound").signer {
            DjangoKind::Plain(signer) => signer.sign(value),
            DjangoKind::Timestamp(signer) => signer.sign(value),
        }
        .map_err(failed_closed)
    }

    /// The signed value, as Django's `unsign`; raises `BadSignature` or
    /// `SignatureExpired` (`max_age` in seconds, timestamped signers only).
    #[pyo3(signature = (signed_value, max_age=None))]
    fn unsign<'py>(
        &self,
        py: Python<'py>,
        signed_value: &str,
        max_age: Option<f64>,
    ) -> PyResult<Bound<'py, PyString>> {
        let verified = self.check(signed_value, max_age)?;
        Ok(PyString::new(py, verified.value))
    }

    /// Like `unsign`, returning a `Verified` that says which key verified
    /// and whether to re-sign.
    #[pyo3(signature = (signed_value, max_age=None))]
    fn verify(&self, py: Python<'_>, signed_value: &str, max_age: Option<f64>) -> PyResult<Verified> {
        let verified = self.check(signed_value, max_age)?;
        let value = PyString::new(py, verified.value).into_any().unbind();
        Ok(Verified::new(value, verified.key, verified.timestamp))
    }

    /// Django's `sign_object` (`signing.dumps` with salt
    /// `django.core.signing` and `timestamp=True`): `obj` as compact JSON.
    #[pyo3(signature = (obj, compress=false))]
    fn sign_object(&self, py: Python<'_>, obj: &Bound<'_, PyAny>, compress: bool) -> PyResult<String> {
        let json = py.import(intern!(py, "json"))?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("separators", (",", ":"))?;
        let text: String = json
            .call_method(intern!(py, "dumps"), (obj,), Some(&kwargs))?
            .extract()?;
        let signer = self.signer()?;
        match &signer.as_ref().expect("bound").signer {
            DjangoKind::Plain(signer) => signer.sign_object(&JsonText(&text), compress),
            DjangoKind::Timestamp(signer) => signer.sign_object(&JsonText(&text), compress),
        }
        .map_err(django_error)
    }

    /// Django's `unsign_object` (`signing.loads`): a `Verified` whose value
    /// is the decoded JSON.
    #[pyo3(signature = (signed_value, max_age=None))]
    fn unsign_object(&self, py: Python<'_>, signed_value: &str, max_age: Option<f64>) -> PyResult<Verified> {
        let max_age = max_age_of(max_age)?;
        let signer = self.signer()?;
        let verified = match (&signer.as_ref().expect("bound").signer, max_age) {
            (DjangoKind::Plain(signer), None) => signer.verify_object::<Box<RawValue>>(signed_value),
            (DjangoKind::Plain(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "max_age needs a timestamped signer: django_signer(..., timestamp=True)",
                ));
            }
            (DjangoKind::Timestamp(signer), max_age) => {
                signer.verify_object::<Box<RawValue>>(signed_value, max_age)
            }
        }
        .map_err(django_error)?;
        let value = py
            .import(intern!(py, "json"))?
            .call_method1(intern!(py, "loads"), (verified.value.get(),))?
            .unbind();
        Ok(Verified::new(value, verified.key, verified.timestamp))
    }
}

#[derive(Debug, Clone)]
struct NativeOptions {
    salt: String,
    timestamp: bool,
    max_age: Option<Duration>,
}

/// keyroll's native signer over a key ring: the token names its key, so one
/// HMAC per verification.
#[pyclass(module = "keyroll", frozen)]
pub struct NativeSigner {
    shared: Arc<Shared>,
    options: NativeOptions,
    bound: ArcSwapOption<Epoch<keyroll::Signer>>,
}

impl NativeSigner {
    pub(crate) fn new(
        shared: Arc<Shared>,
        salt: &str,
        timestamp: bool,
        max_age: Option<f64>,
    ) -> PyResult<Self> {
        let options = NativeOptions {
            salt: salt.to_owned(),
            timestamp: timestamp || max_age.is_some(),
            max_age: max_age_of(max_age)?,
        };
        Ok(Self {
            shared,
            options,
            bound: ArcSwapOption::empty(),
        })
    }

    fn check(&self, token: &str) -> PyResult<keyroll::Verified<String>> {
        let signer = self.signer()?;
        signer
            .as_ref()
            .expect("bound")
            .signer
            .verify(token)
            .map_err(native_error)
    }

    fn signer(&self) -> PyResult<Guard<Option<Arc<Epoch<keyroll::Signer>>>>> {
        bound(&self.shared, &self.bound, |keyring| {
            let mut signer = keyroll::Signer::new(keyring).with_salt(self.options.salt.clone());
            if self.options.timestamp {
                signer = signer.with_timestamps();
            }
            if let Some(max_age) = self.options.max_age {
                signer = signer.with_max_age(max_age);
            }
            Ok(signer)
        })
    }
}

#[pymethods]
impl NativeSigner {
    /// A token for `value` with the current key.
    fn sign(&self, value: &str) -> PyResult<String> {
        self.signer()?
            .as_ref()
            .expect("bound")
            .signer
            .sign(value)
            .map_err(failed_closed)
    }

    /// The signed value; raises `BadSignature` or `SignatureExpired`.
    fn unsign(&self, token: &str) -> PyResult<String> {
        Ok(self.check(token)?.value)
    }

    /// The signed value with the key that verified it.
    fn verify(&self, py: Python<'_>, token: &str) -> PyResult<Verified> {
        let verified = self.check(token)?;
        let value = PyString::new(py, &verified.value).into_any().unbind();
        Ok(Verified::new(value, verified.key, verified.timestamp))
    }
}

/// Fernet's errors: `InvalidToken` for any token that is not to be trusted,
/// an expired one too (as `cryptography` raises).
fn fernet_error(error: DecryptError) -> PyErr {
    refused(
        error.rejection(),
        error.to_string(),
        InvalidToken::new_err,
        InvalidToken::new_err,
    )
}

/// Text or bytes as bytes.
fn bytes_of(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_cow()?.as_bytes().to_vec());
    }
    value.extract::<Vec<u8>>()
}

fn token_of(value: &Bound<'_, PyAny>) -> PyResult<String> {
    String::from_utf8(bytes_of(value)?)
        .map_err(|_| InvalidToken::new_err("malformed Fernet token: not UTF-8"))
}

/// `cryptography`'s `MultiFernet` over a key ring: encrypt with the current
/// key, decrypt with any verifying key, rotate to the current key keeping the
/// original timestamp. Tokens are bytes, as in `cryptography`.
#[pyclass(module = "keyroll", frozen)]
pub struct Fernet {
    shared: Arc<Shared>,
    derive: Derive,
    bound: ArcSwapOption<Epoch<Encrypter>>,
}

impl Fernet {
    pub(crate) fn new(shared: Arc<Shared>, derive: &str) -> PyResult<Self> {
        let derive = Derive::from_str(derive).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let fernet = Self {
            shared,
            derive,
            bound: ArcSwapOption::empty(),
        };
        // A key set whose keys are not Fernet keys fails here, naming the key.
        fernet.encrypter()?;
        Ok(fernet)
    }

    fn encrypter(&self) -> PyResult<Guard<Option<Arc<Epoch<Encrypter>>>>> {
        bound(&self.shared, &self.bound, |keyring| {
            Encrypter::new(keyring, self.derive).map_err(|e| KeyrollError::new_err(e.to_string()))
        })
    }
}

#[pymethods]
impl Fernet {
    /// A token for `data` (bytes or text) with the current key.
    fn encrypt<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let data = bytes_of(data)?;
        self.token(py, |encrypter| {
            encrypter
                .encrypt(&data)
                .map_err(|e| KeyrollError::new_err(e.to_string()))
        })
    }

    /// The plaintext of `token`; raises `InvalidToken` (`ttl` in seconds).
    #[pyo3(signature = (token, ttl=None))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let decrypted = self.decrypted(py, token, ttl)?;
        Ok(decrypted.value.into_bound(py).cast_into::<PyBytes>()?)
    }

    /// Like `decrypt`, returning a `Verified` whose value is the plaintext;
    /// `needs_resign` says a key other than the current one decrypted it:
    /// store `rotate(token)` in its place.
    #[pyo3(signature = (token, ttl=None))]
    fn decrypt_verified(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<Verified> {
        self.decrypted(py, token, ttl)
    }

    /// `token` re-encrypted with the current key, keeping its timestamp.
    fn rotate<'py>(&self, py: Python<'py>, token: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let token = token_of(token)?;
        self.token(py, |encrypter| encrypter.rotate(&token).map_err(fernet_error))
    }
}

impl Fernet {
    /// The token `make` produces with the current encrypter, as bytes.
    fn token<'py>(
        &self,
        py: Python<'py>,
        make: impl FnOnce(&Encrypter) -> PyResult<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let encrypter = self.encrypter()?;
        let token = make(&encrypter.as_ref().expect("bound").signer)?;
        Ok(PyBytes::new(py, token.as_bytes()))
    }

    fn decrypted(&self, py: Python<'_>, token: &Bound<'_, PyAny>, ttl: Option<f64>) -> PyResult<Verified> {
        let token = token_of(token)?;
        let ttl = ttl.map(|t| seconds("ttl", t)).transpose()?;
        let encrypter = self.encrypter()?;
        let decrypted = encrypter
            .as_ref()
            .expect("bound")
            .signer
            .decrypt(&token, ttl)
            .map_err(fernet_error)?;
        let plaintext = PyBytes::new(py, &decrypted.value).into_any().unbind();
        Ok(Verified::new(plaintext, decrypted.key, decrypted.timestamp))
    }
}

/// Format objects show their options, never keys.
fn debug_options(f: &mut fmt::Formatter<'_>, name: &str, options: &dyn fmt::Debug) -> fmt::Result {
    f.debug_struct(name)
        .field("options", options)
        .finish_non_exhaustive()
}

impl fmt::Debug for DjangoSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_options(f, "DjangoSigner", &self.options)
    }
}

impl fmt::Debug for NativeSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_options(f, "NativeSigner", &self.options)
    }
}

impl fmt::Debug for Fernet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_options(f, "Fernet", &self.derive)
    }
}
