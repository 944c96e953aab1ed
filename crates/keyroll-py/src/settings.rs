//! Django's `settings.SECRET_KEY` and `settings.SECRET_KEY_FALLBACKS` as data
//! descriptors that read a key ring (`keyroll.django.live` installs them).
//!
//! A read costs one generation compare: the `str` of the signing key and
//! the `list`s of fallbacks are built once per key-set generation (or role
//! transition) and handed out as they are, as Django hands out a static
//! setting's objects. The generation in force is the one item of a Python
//! list, which only the GIL guards: a read takes no lock and makes no atomic
//! read-modify-write. The next role change (an activation, a fallback
//! window's end) is checked on the coarse clock, as the core checks a
//! generation's roles ([`Deadline`]). The core's rule is checked on every
//! read: once the keyring has failed closed
//! ([`Keyring::serving_at`](keyroll::Keyring::serving_at)), every read raises
//! `ImproperlyConfigured`, and the first good key set reopens it.
//!
//! Django reads the key and then the fallbacks (`Signer.__init__`, the token
//! generator, the session auth hash), so a reader can take the key from one
//! generation and the fallbacks from the next. For `grace` after a generation
//! whose signing key changed first serves, the fallbacks therefore also hold
//! the new signing key: such a reader verifies what the new key signs. Keys
//! the new generation dropped are never added back: a revoked key stops
//! verifying at once.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use keyroll::raw::Deadline;
use keyroll::{KeySet, Keyring};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::ring::{KeyRing, Live, Shared, seconds, text};

/// One generation's keys as Django wants them, built once. A Python object,
/// so the state can hold the one in force where only the GIL guards it.
#[pyclass(module = "keyroll._keyroll", frozen)]
struct Generation {
    /// What it was built from: the key ring's state and the keyring object.
    shared: Arc<Shared>,
    keyring: Keyring,
    epoch: u64,
    generation: u64,
    /// Until the next moment a role changes (checked on the coarse clock,
    /// as the core checks a generation's roles): the keys are rebuilt then.
    holds: Deadline,
    key: Py<PyString>,
    fallbacks: Py<PyList>,
    /// Until when, and what, the fallbacks are during a transition.
    transition: Option<(SystemTime, Py<PyList>)>,
}

impl Generation {
    /// Still the key set in place. Not the keyring's generation counter: a
    /// swap is visible (to `KeyRing.generation`, to every signer) once the
    /// set is stored, a hair before the counter moves, and a read after that
    /// must not serve the previous key. The settled generation is one atomic
    /// load and never lags a set another thread has seen.
    #[inline]
    fn in_place(&self) -> bool {
        self.shared.epoch.load(Ordering::Acquire) == self.epoch
            && self.keyring.settled_generation() == Some(self.generation)
    }

    /// What a read of `name` returns. Only the fallbacks during a
    /// transition read the wall clock.
    fn value(&self, py: Python<'_>, name: Name) -> Py<PyAny> {
        match (name, &self.transition) {
            (Name::SecretKey, _) => self.key.clone_ref(py).into_any(),
            (Name::Fallbacks, Some((until, during))) if SystemTime::now() < *until => {
                during.clone_ref(py).into_any()
            }
            (Name::Fallbacks, _) => self.fallbacks.clone_ref(py).into_any(),
        }
    }
}

/// State shared by the two descriptors of one settings object.
struct State {
    ring: ArcSwapOption<Shared>,
    /// `[Generation]` in force, or `[None]`: a Python list, read and written
    /// only under the GIL, so a read takes no lock and no atomic
    /// read-modify-write.
    current: Py<PyList>,
    /// An override (`override_settings`, pytest-django's `settings`) wraps
    /// the settings: reads then ask `overridden` first.
    overridden: AtomicBool,
    grace: Duration,
    /// `django.core.exceptions.ImproperlyConfigured`.
    error: Py<PyAny>,
    /// `(lazy, name) -> (found, value)`: the value of an override in force.
    lookup_override: Py<PyAny>,
    /// `() -> KeyRing`: opens the key ring when it could not be opened at
    /// start, or raises `ImproperlyConfigured` with the reason.
    reopen: Py<PyAny>,
}

impl State {
    fn refuse(&self, py: Python<'_>, message: String) -> PyErr {
        PyErr::from_value(match self.error.bind(py).call1((message,)) {
            Ok(error) => error,
            Err(error) => return error,
        })
    }

    /// What a read of `name` returns: the generation's object when nothing
    /// changed (one compare of the key set in place and a coarse-clock check
    /// of the next role change); rebuilt when the key set, the keyring object
    /// or a role changed; refused once failed closed.
    #[inline]
    fn read(&self, py: Python<'_>, name: Name) -> PyResult<Py<PyAny>> {
        let current = self.current.bind(py).get_item(0)?;
        if let Ok(cached) = current.cast::<Generation>() {
            let cached = cached.get();
            if cached.in_place() && cached.holds.holds() {
                if cached.keyring.is_closed() {
                    return Err(self.refuse(py, closed_message(keyroll::Closed::FailedClosed)));
                }
                return Ok(cached.value(py, name));
            }
        }
        Ok(self.rebuild(py, SystemTime::now())?.get().value(py, name))
    }

    /// The keys a read at `now` must see, built from the key set in force,
    /// or why there are none.
    fn rebuild<'py>(&self, py: Python<'py>, now: SystemTime) -> PyResult<Bound<'py, Generation>> {
        let shared = match self.ring.load_full() {
            Some(shared) => shared,
            None => {
                let ring = self.reopen.bind(py).call0()?;
                let shared = Arc::clone(&ring.cast::<KeyRing>()?.get().shared);
                self.ring.store(Some(Arc::clone(&shared)));
                shared
            }
        };
        let live = shared
            .live()
            .map_err(|error| self.refuse(py, format!("keyroll.django: {}", error.value(py))))?;
        let live: &Live = live.as_ref().expect("checked open");
        let set = live
            .keyring
            .serving_at(now)
            .map_err(|closed| self.refuse(py, closed_message(closed)))?;
        let current = self.current.bind(py);
        let previous = current.get_item(0)?;
        let previous = previous.cast::<Generation>().ok().map(Bound::get);
        let next = Bound::new(py, self.build(py, &shared, live, &set, previous, now)?)?;
        current.set_item(0, &next)?;
        Ok(next)
    }

    fn build(
        &self,
        py: Python<'_>,
        shared: &Arc<Shared>,
        live: &Live,
        set: &KeySet,
        previous: Option<&Generation>,
        now: SystemTime,
    ) -> PyResult<Generation> {
        let signing = set.signing_key_at(now);
        let key = text(py, signing)?;
        let fallbacks = set
            .verify_only_keys_at(now)
            .map(|entry| text(py, entry))
            .collect::<PyResult<Vec<_>>>()?;
        let settled = PyList::new(py, &fallbacks)?;
        // Django reads the key before the fallbacks (Signer.__init__, the
        // token generator, the session auth hash), so the one mix a reader
        // can see is the previous key with these fallbacks: it must verify
        // what the new key signs. The new key is therefore among the
        // fallbacks for `grace` (grown before the swap is visible); no key
        // this generation dropped is added back, so a key the store revoked
        // stops verifying at once, as through every other door.
        // A rebuild that keeps the key (a role moment, a change of fallbacks)
        // keeps a transition still running, over the new fallbacks.
        let until = match previous {
            Some(previous) if previous.key.bind(py).to_cow()? != key.to_cow()? => Some(now + self.grace),
            Some(previous) => previous
                .transition
                .as_ref()
                .map(|(until, _)| *until)
                .filter(|until| now < *until),
            None => None,
        };
        let mut transition = None;
        if let Some(until) = until {
            let during = PyList::new(py, &fallbacks)?;
            during.append(&key)?;
            transition = Some((until, during.unbind()));
        }
        Ok(Generation {
            shared: Arc::clone(shared),
            keyring: live.keyring.clone(),
            epoch: live.epoch,
            generation: set.generation(),
            holds: Deadline::until(set.next_transition_after(now)),
            key: key.unbind(),
            fallbacks: settled.unbind(),
            transition,
        })
    }
}

fn closed_message(closed: keyroll::Closed) -> String {
    format!("keyroll.django: {closed}")
}

/// Which setting a descriptor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    SecretKey,
    Fallbacks,
}

impl Name {
    fn as_str(self) -> &'static str {
        match self {
            Self::SecretKey => "SECRET_KEY",
            Self::Fallbacks => "SECRET_KEY_FALLBACKS",
        }
    }
}

/// `settings.SECRET_KEY` or `settings.SECRET_KEY_FALLBACKS`, read from the
/// key ring (a data descriptor on the settings object's class).
#[pyclass(module = "keyroll._keyroll", frozen)]
pub struct LiveSetting {
    state: Arc<State>,
    name: Name,
}

impl fmt::Debug for LiveSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSetting")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[pymethods]
impl LiveSetting {
    fn __get__(
        slf: &Bound<'_, Self>,
        instance: Option<&Bound<'_, PyAny>>,
        _owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Some(instance) = instance else {
            return Ok(slf.clone().into_any().unbind());
        };
        let this = slf.get();
        let state = &this.state;
        if state.overridden.load(Ordering::Relaxed) {
            let found = state
                .lookup_override
                .bind(py)
                .call1((instance, this.name.as_str()))?;
            let found = found.cast::<PyTuple>()?;
            if found.get_item(0)?.is_truthy()? {
                return Ok(found.get_item(1)?.unbind());
            }
        }
        state.read(py, this.name)
    }

    fn __set__(&self, py: Python<'_>, _instance: Bound<'_, PyAny>, _value: Bound<'_, PyAny>) -> PyResult<()> {
        Err(self.state.refuse(
            py,
            format!(
                "settings.{} follows the key ring of keyroll.django and cannot be assigned",
                self.name.as_str()
            ),
        ))
    }

    /// Tells the descriptors whether an override wraps the settings now.
    fn set_overridden(&self, overridden: bool) {
        self.state.overridden.store(overridden, Ordering::Relaxed);
    }

    /// Serves `ring` from now on (after it was opened late).
    fn attach(&self, ring: &Bound<'_, KeyRing>) -> PyResult<()> {
        self.state.ring.store(Some(Arc::clone(&ring.get().shared)));
        self.state.current.bind(ring.py()).set_item(0, ring.py().None())
    }

    /// `(signing key, settled fallbacks)` of the generation in force, built
    /// as a read builds them (for `manage.py check`).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyList>)> {
        let key = self.state.read(py, Name::SecretKey)?;
        let current = self.state.current.bind(py).get_item(0)?;
        let keys = current.cast::<Generation>()?.get();
        Ok((key.into_bound(py).cast_into()?, keys.fallbacks.bind(py).clone()))
    }
}

/// The two descriptors over one shared state: `(SECRET_KEY,
/// SECRET_KEY_FALLBACKS)`. `ring` may be `None` when the store could not be
/// opened at start; `reopen()` is called on a read until it returns a ring.
#[pyfunction]
#[pyo3(signature = (ring, *, grace, improperly_configured, lookup_override, reopen))]
pub(crate) fn django_settings(
    py: Python<'_>,
    ring: Option<&Bound<'_, KeyRing>>,
    grace: f64,
    improperly_configured: Py<PyAny>,
    lookup_override: Py<PyAny>,
    reopen: Py<PyAny>,
) -> PyResult<(LiveSetting, LiveSetting)> {
    let state = Arc::new(State {
        ring: ArcSwapOption::new(ring.map(|ring| Arc::clone(&ring.get().shared))),
        current: PyList::new(py, [py.None()])?.unbind(),
        overridden: AtomicBool::new(false),
        grace: seconds("grace", grace)?,
        error: improperly_configured,
        lookup_override,
        reopen,
    });
    Ok((
        LiveSetting {
            state: Arc::clone(&state),
            name: Name::SecretKey,
        },
        LiveSetting {
            state,
            name: Name::Fallbacks,
        },
    ))
}
