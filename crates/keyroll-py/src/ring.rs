//! `keyroll.open` and `KeyRing`: a refresher on its own runtime, rebuilt in
//! a forked child.

use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwapOption, Guard};
use keyroll::options::{Options, duration_of_seconds};
use keyroll::{
    Closed, Health, KeyEntry, KeySet, Keyring, ProviderError, Reach, Refresher, RefresherBuilder, Status,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use tokio::runtime::Runtime;

use crate::formats::{DjangoSigner, Fernet, NativeSigner};
use crate::{FailedClosed, KeyrollError};

/// `seconds` as a [`Duration`]; negative, NaN, infinite or absurdly large
/// values (beyond [`MAX_DURATION`](keyroll::options::MAX_DURATION)) are a
/// `ValueError` naming the argument.
pub(crate) fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    duration_of_seconds(value).map_err(|problem| PyValueError::new_err(format!("{name} {problem}")))
}

/// What `keyroll.open` was asked for, kept to rebuild the refresher in a
/// forked child.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    uri: String,
    options: Options,
}

impl Config {
    /// The options of `keyroll.open` (and `keyroll.rotate`) for `function`,
    /// checked by the library's table.
    pub(crate) fn new(function: &str, uri: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Ok(Self {
            uri: uri.to_owned(),
            options: crate::options::from_kwargs(function, options)?,
        })
    }

    pub(crate) fn builder(&self) -> Result<RefresherBuilder, ProviderError> {
        Ok(self.options.apply(Refresher::builder(keyroll::open(&self.uri)?)))
    }
}

/// A `KeyrollError` carrying `kind` (`config`, `keys` or `unavailable`:
/// [`StartFailure`](keyroll::StartFailure)).
pub(crate) fn open_error(py: Python<'_>, kind: &'static str, message: String) -> PyErr {
    let error = KeyrollError::new_err(message);
    // Setting an attribute on a fresh exception object cannot fail short of
    // memory exhaustion; the message alone still says what went wrong.
    let _ = error.value(py).setattr("kind", kind);
    error
}

pub(crate) fn runtime() -> PyResult<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("keyroll-refresher")
        .enable_all()
        .build()
        .map_err(|e| KeyrollError::new_err(format!("cannot start the refresher's runtime: {e}")))
}

/// One refresher and the keyring it fills. Replaced whole after a fork.
pub(crate) struct Live {
    /// Changes whenever the keyring object changes, so format objects
    /// rebuild their Rust signers over the new keyring.
    pub(crate) epoch: u64,
    /// Added to the keyring's generation so the generation Python sees only
    /// grows, across refresher rebuilds.
    base: u64,
    pub(crate) keyring: Keyring,
    /// `None` in a forked child until its own refresher has started.
    refresher: Option<Refresher>,
    /// In a forked child before its refresher runs: the parent's status at
    /// the fork and why the child's refresher has not started yet.
    interim: Option<(Status, Mutex<Option<String>>)>,
}

impl Live {
    /// The key set in force at `now`, or `FailedClosed`: the core's rule
    /// ([`Keyring::serving_at`]), read by every key and signer this
    /// package hands out.
    pub(crate) fn serving_at(&self, now: SystemTime) -> PyResult<Guard<Arc<KeySet>>> {
        self.keyring.serving_at(now).map_err(failed_closed)
    }

    pub(crate) fn generation_of(&self, set: &KeySet) -> u64 {
        self.base.saturating_add(set.generation())
    }

    fn status(&self) -> Status {
        match (&self.refresher, &self.interim) {
            (Some(refresher), _) => refresher.status(),
            (None, Some((status, error))) => {
                let mut status = status.clone();
                if let Some(error) = lock(error).clone() {
                    status.health = Health::Degraded;
                    status.last_error = Some(error);
                }
                // The inherited keyring keeps its stale deadline and its
                // revocation across the fork: the child's status says so,
                // as the parent's refresher would.
                if self.keyring.is_closed() {
                    status.health = Health::Stale;
                }
                status
            }
            (None, None) => unreachable!("a live key ring has a refresher or an interim status"),
        }
    }
}

/// The core's refusal as the Python exception.
pub(crate) fn failed_closed(closed: Closed) -> PyErr {
    FailedClosed::new_err(closed.to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Shared {
    config: Config,
    live: ArcSwapOption<Live>,
    runtime: ArcSwapOption<Runtime>,
    epochs: AtomicU64,
    /// The epoch of the live state in place, 0 once closed: what format
    /// objects check on every call (one atomic load).
    pub(crate) epoch: AtomicU64,
    /// The status taken just before a fork, for the child's interim status.
    at_fork: Mutex<Option<Status>>,
}

impl Shared {
    /// The live state, or `KeyrollError` once closed.
    pub(crate) fn live(&self) -> PyResult<Guard<Option<Arc<Live>>>> {
        let live = self.live.load();
        if live.is_none() {
            return Err(KeyrollError::new_err("the key ring is closed"));
        }
        Ok(live)
    }

    fn next_epoch(&self) -> u64 {
        self.epochs.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Stop the refresher before its runtime goes.
        drop(self.live.swap(None));
        if let Some(runtime) = self.runtime.swap(None)
            && let Ok(runtime) = Arc::try_unwrap(runtime)
        {
            runtime.shutdown_background();
        }
    }
}

/// A live key ring: the keys of a source, kept current by a refresher that
/// runs in its own threads. From `keyroll.open`.
#[pyclass(module = "keyroll", frozen, weakref)]
pub struct KeyRing {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.__repr__())
    }
}

/// Opens the key source `uri` and waits (without the GIL) for a first good
/// key set.
///
/// `options` are the library's table (`keyroll._keyroll.OPTIONS`).
#[pyfunction]
#[pyo3(signature = (uri, **options))]
pub(crate) fn open(py: Python<'_>, uri: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<KeyRing> {
    let config = Config::new("open", uri, options)?;
    let builder = config
        .builder()
        .map_err(|e| open_error(py, "config", e.to_string()))?;
    let runtime = runtime()?;
    let refresher = py
        .detach(|| runtime.block_on(builder.start()))
        .map_err(|e| open_error(py, e.kind().as_str(), e.reason()))?;
    let shared = Arc::new(Shared {
        config,
        live: ArcSwapOption::from_pointee(Live {
            epoch: 1,
            base: 0,
            keyring: refresher.keyring().clone(),
            refresher: Some(refresher),
            interim: None,
        }),
        runtime: ArcSwapOption::from_pointee(runtime),
        epochs: AtomicU64::new(1),
        epoch: AtomicU64::new(1),
        at_fork: Mutex::new(None),
    });
    Ok(KeyRing { shared })
}

/// Key material as text: Django and Flask keys are `str`.
pub(crate) fn text<'py>(py: Python<'py>, key: &KeyEntry) -> PyResult<Bound<'py, PyString>> {
    match std::str::from_utf8(key.material().expose_secret()) {
        Ok(text) => Ok(PyString::new(py, text)),
        Err(_) => Err(KeyrollError::new_err(format!(
            "key {} is not UTF-8 text; Django and Flask keys must be text: publish it as text (e.g. base64)",
            key.id()
        ))),
    }
}

fn verification_list<'py>(py: Python<'py>, set: &KeySet, now: SystemTime) -> PyResult<Bound<'py, PyList>> {
    let keys = set
        .verifying_keys_at(now)
        .map(|(key, _)| text(py, key))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, keys)
}

/// After a fork, in the child: the refresher's threads are gone. Serve the
/// inherited keys, start a new refresher on a new runtime and switch to it
/// once it has a good key set.
async fn restart(shared: Weak<Shared>, interim_epoch: u64) {
    let Some(config) = shared.upgrade().map(|s| s.config.clone()) else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = match config.builder() {
            Ok(builder) => builder.start().await.map_err(|e| e.reason()),
            Err(error) => Err(error.to_string()),
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let current = shared.live.load_full();
        let Some(interim) = current.as_ref().filter(|l| l.epoch == interim_epoch) else {
            // Closed meanwhile.
            if let Ok(refresher) = started {
                refresher.shutdown().await;
            }
            return;
        };
        match started {
            Ok(refresher) => {
                let base = interim.generation_of(&interim.keyring.load());
                let next = Arc::new(Live {
                    epoch: shared.next_epoch(),
                    base,
                    keyring: refresher.keyring().clone(),
                    refresher: Some(refresher),
                    interim: None,
                });
                let epoch = next.epoch;
                // Fails only when closed meanwhile: the new refresher is then dropped.
                let previous = shared.live.compare_and_swap(&current, Some(next));
                if previous.as_ref().is_some_and(|p| p.epoch == interim_epoch) {
                    shared.epoch.store(epoch, Ordering::Release);
                }
                return;
            }
            Err(error) => {
                if let Some((_, reason)) = &interim.interim {
                    *lock(reason) = Some(format!("refresher not restarted after fork yet: {error}"));
                }
                drop(shared);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.options.interval());
            }
        }
    }
}

#[pymethods]
impl KeyRing {
    /// The key that signs now (text). Raises `FailedClosed` once the key
    /// ring has failed closed.
    #[getter]
    fn signing_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let live = self.shared.live()?;
        let live = live.as_ref().expect("checked open");
        let now = SystemTime::now();
        text(py, live.serving_at(now)?.signing_key_at(now))
    }

    /// Every key that verifies now: the current key first, then pending keys,
    /// then fallbacks, newest first. Raises `FailedClosed` once the key ring
    /// has failed closed.
    #[getter]
    fn verification_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let live = self.shared.live()?;
        let live = live.as_ref().expect("checked open");
        let now = SystemTime::now();
        verification_list(py, &*live.serving_at(now)?, now)
    }

    /// The key set's generation: one more on every change.
    #[getter]
    fn generation(&self) -> PyResult<u64> {
        let live = self.shared.live()?;
        let live = live.as_ref().expect("checked open");
        Ok(live.generation_of(&live.keyring.load()))
    }

    /// The generation, when the key ring serves: one cheap call for
    /// integrations that apply keys once per generation (`keyroll.flask`).
    /// Raises `FailedClosed` once the key ring has failed closed.
    fn serving_generation(&self) -> PyResult<u64> {
        let live = self.shared.live()?;
        let live = live.as_ref().expect("checked open");
        let set = live.serving_at(SystemTime::now())?;
        Ok(live.generation_of(&set))
    }

    /// `(generation, signing_key, verification_keys)` from one key set, at
    /// one instant: never a mix of two generations. Raises `FailedClosed`
    /// once the key ring has failed closed.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let live = self.shared.live()?;
        let live = live.as_ref().expect("checked open");
        let now = SystemTime::now();
        let set = live.serving_at(now)?;
        let signing = text(py, set.signing_key_at(now))?;
        let verifying = verification_list(py, &set, now)?;
        (live.generation_of(&set), signing, verifying).into_pyobject(py)
    }

    /// The refresher's state: health (`healthy`, `degraded`, `stale` once
    /// failed closed, `stopped` once no refresher runs), last_error, staleness_seconds, generation, source,
    /// consecutive_failures, reach (`local` or `shared`: whether other hosts
    /// read the same store), activation_delay_seconds (the delay in force),
    /// rotation (with `rotate_every`: `{"period_seconds", "next_due"` (Unix
    /// seconds or None)`, "published", "lost", "retired", "kept"` (`[(id,
    /// why)]`), `"last_error"}`,
    /// else None) and keys (`[{"id", "role"}]`). Never key material.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let live = self.shared.live()?;
        let live = live.as_ref().expect("checked open");
        let status = live.status();
        let set = live.keyring.key_set();
        let now = SystemTime::now();
        let dict = PyDict::new(py);
        dict.set_item("health", status.health.as_str())?;
        dict.set_item("last_error", status.last_error.as_deref())?;
        dict.set_item("staleness_seconds", status.staleness().as_secs_f64())?;
        dict.set_item("generation", live.generation_of(&set))?;
        dict.set_item("source", &status.source)?;
        dict.set_item("consecutive_failures", status.consecutive_failures)?;
        dict.set_item(
            "reach",
            match status.reach {
                Reach::Shared => "shared",
                _ => "local",
            },
        )?;
        dict.set_item("activation_delay_seconds", status.activation_delay.as_secs_f64())?;
        let rotation = match &status.rotation {
            Some(rotation) => {
                let entry = PyDict::new(py);
                entry.set_item("period_seconds", rotation.period.as_secs_f64())?;
                let due = rotation
                    .next_due
                    .and_then(|due| due.duration_since(SystemTime::UNIX_EPOCH).ok());
                entry.set_item("next_due", due.map(|due| due.as_secs_f64()))?;
                entry.set_item("published", rotation.published)?;
                entry.set_item("lost", rotation.lost)?;
                entry.set_item("retired", rotation.retired)?;
                entry.set_item("kept", rotation.kept.clone())?;
                entry.set_item("last_error", rotation.last_error.as_deref())?;
                Some(entry)
            }
            None => None,
        };
        dict.set_item("rotation", rotation)?;
        let keys = PyList::empty(py);
        for key in set.keys() {
            let entry = PyDict::new(py);
            entry.set_item("id", key.id())?;
            entry.set_item("role", key.role_at(now).to_string())?;
            keys.append(entry)?;
        }
        dict.set_item("keys", keys)?;
        Ok(dict)
    }

    /// Publishes a new key in this ring's store, as `keyroll.rotate` does
    /// with the options the ring was opened with; the ring picks it up at
    /// its next poll (or `refresh_now()`).
    #[pyo3(signature = (*, chars=None, bytes=None, promote=false, disable_old=false))]
    fn rotate<'py>(
        &self,
        py: Python<'py>,
        chars: Option<usize>,
        bytes: Option<usize>,
        promote: bool,
        disable_old: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        crate::ops::rotate_config(py, &self.shared.config, chars, bytes, promote, disable_old)
    }

    /// Asks the refresher to poll the source now rather than at the next
    /// interval.
    fn refresh_now(&self) -> PyResult<()> {
        let live = self.shared.live()?;
        if let Some(refresher) = live.as_ref().and_then(|l| l.refresher.as_ref()) {
            refresher.refresh_now();
        }
        Ok(())
    }

    /// Stops the refresher. Idempotent; any later use raises `KeyrollError`.
    fn close(&self, py: Python<'_>) {
        self.shared.epoch.store(0, Ordering::Release);
        let Some(live) = self.shared.live.swap(None) else {
            return;
        };
        let runtime = self.shared.runtime.load_full();
        py.detach(|| {
            if let (Some(refresher), Some(runtime)) = (&live.refresher, &runtime) {
                runtime.block_on(refresher.shutdown());
            }
            drop(live);
        });
    }

    /// True once closed.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.live.load().is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        match self.shared.live.load().as_ref() {
            Some(live) => format!(
                "<keyroll.KeyRing {} generation {}>",
                live.status().source,
                live.generation_of(&live.keyring.load())
            ),
            None => "<keyroll.KeyRing closed>".to_owned(),
        }
    }

    /// Django's `Signer` (or `TimestampSigner` with `timestamp=True`) over
    /// this key ring. `salt=None` is Django's default for the class.
    #[pyo3(signature = (salt=None, *, timestamp=false, sep=":", algorithm="sha256"))]
    fn django_signer(
        &self,
        salt: Option<String>,
        timestamp: bool,
        sep: &str,
        algorithm: &str,
    ) -> PyResult<DjangoSigner> {
        DjangoSigner::new(Arc::clone(&self.shared), salt, timestamp, sep, algorithm)
    }

    /// keyroll's native signer: tokens name their key, one HMAC per verify.
    #[pyo3(signature = (salt="", *, timestamp=false, max_age=None))]
    fn native_signer(&self, salt: &str, timestamp: bool, max_age: Option<f64>) -> PyResult<NativeSigner> {
        NativeSigner::new(Arc::clone(&self.shared), salt, timestamp, max_age)
    }

    /// `MultiFernet` over the key ring. `derive="raw"`: every key is a
    /// Fernet key; `"hkdf"`: keys are any secrets, stretched as
    /// django-fernet-fields does.
    #[pyo3(signature = (derive="raw"))]
    fn fernet(&self, derive: &str) -> PyResult<Fernet> {
        Fernet::new(Arc::clone(&self.shared), derive)
    }

    /// Called by `keyroll`'s `os.register_at_fork(before=...)` hook.
    fn _before_fork(&self) {
        if let Some(live) = self.shared.live.load().as_ref() {
            *lock(&self.shared.at_fork) = Some(live.status());
        }
    }

    /// Called by `keyroll`'s `os.register_at_fork(after_in_child=...)` hook:
    /// the refresher's threads did not survive the fork; start new ones.
    fn _after_fork_in_child(&self) -> PyResult<()> {
        // The old runtime's threads and the old refresher's task are gone:
        // dropping them would wait for threads that no longer exist.
        mem::forget(self.shared.runtime.swap(None));
        let Some(inherited) = self.shared.live.load_full() else {
            return Ok(());
        };
        let status = lock(&self.shared.at_fork)
            .take()
            .unwrap_or_else(|| inherited.status());
        let epoch = self.shared.next_epoch();
        let interim = Live {
            epoch,
            base: inherited.base,
            keyring: inherited.keyring.clone(),
            refresher: None,
            interim: Some((status, Mutex::new(None))),
        };
        mem::forget(self.shared.live.swap(Some(Arc::new(interim))));
        self.shared.epoch.store(epoch, Ordering::Release);
        mem::forget(inherited);
        let runtime = runtime()?;
        runtime.spawn(restart(Arc::downgrade(&self.shared), epoch));
        self.shared.runtime.store(Some(Arc::new(runtime)));
        Ok(())
    }
}
