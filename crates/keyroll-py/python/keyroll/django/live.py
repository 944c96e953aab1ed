"""``settings.SECRET_KEY`` and ``settings.SECRET_KEY_FALLBACKS`` that follow a key ring.

Django's ``LazySettings`` caches every setting it reads in its instance
``__dict__``, and its ``__setattr__`` pops that cache *before* it writes the
new value, so a reader in between caches the old key until the next
assignment. Assigning the settings is therefore not used at all: the
settings object gets a subclass of its own class (``settings.__class__``)
whose ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` are properties. A property
is a data descriptor: it wins over the instance ``__dict__`` and is consulted
before ``__getattr__``, so no cache can hold a key, and every read returns the
key ring's key set of that moment (at least as new as the ring's generation
when the read started).

Both names read one immutable per-generation value built once per key-set
generation (a generation compare on the hot path). Django reads the key and
the fallbacks separately (``Signer.__init__``, the token generator, the
session auth hash), so a reader can take the key from one generation and the
fallbacks from the next. For ``TRANSITION_GRACE`` seconds after this process
first sees a generation whose signing key changed, the fallbacks therefore
also hold the new signing key (grown before the swap is visible) and the keys
the previous generation verified (shrunk only later): every mix of two
adjacent generations verifies what either of them verifies.

An override in force (``override_settings``, pytest-django's ``settings``
fixture; both wrap the settings in a ``UserSettingsHolder``) always wins.
"""

import logging
import os
import threading
import time

from django.conf import LazySettings, UserSettingsHolder, settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import empty

import keyroll
from keyroll import KeyrollError

from . import conf

logger = logging.getLogger("keyroll.django")

TRANSITION_GRACE = 5.0
HEALTH_EVERY = 1.0
NAMES = ("SECRET_KEY", "SECRET_KEY_FALLBACKS")


class KeySet:
    """One key-set generation as Django wants it. Built once per generation."""

    __slots__ = ("generation", "key", "fallbacks", "transition_fallbacks", "transition_until")

    def __init__(self, generation, key, verification_keys, previous):
        self.generation = generation
        self.key = key
        self.fallbacks = tuple(k for k in verification_keys if k != key)
        self.transition_until = 0.0
        self.transition_fallbacks = self.fallbacks
        if previous is not None and previous.key != key:
            extra = [k for k in (previous.key, *previous.fallbacks) if k != key and k not in self.fallbacks]
            self.transition_fallbacks = (*self.fallbacks, *extra, key)
            self.transition_until = time.monotonic() + TRANSITION_GRACE

    def fallbacks_now(self):
        if self.transition_until and time.monotonic() < self.transition_until:
            return list(self.transition_fallbacks)
        return list(self.fallbacks)

    def __repr__(self):
        return f"<KeySet generation={self.generation} fallbacks={len(self.fallbacks)}>"


class LiveKeys:
    """The key ring of one process, opened from the ``KEYROLL`` setting."""

    def __init__(self, config):
        self.config = config
        self._ring = None
        self._error = None
        self._current = None
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._fail_closed_after = config.options.get("fail_closed_after")
        self._failed_closed = False
        self._health_at = 0.0

    def open(self):
        """Opens the key ring; on failure records and logs the reason, which later reads raise."""
        try:
            ring = keyroll.open(self.config.keys, **self.config.options)
        except (KeyrollError, ValueError, TypeError) as error:
            self._error = str(error)
            self._retry_at = time.monotonic() + self.config.options.get("interval", 30.0)
            logger.error("keyroll.django: cannot load the keys of KEYROLL['KEYS']: %s", self._error)
            return False
        self._ring, self._error = ring, None
        logger.info("keyroll.django: keys loaded, generation %s", ring.generation)
        return True

    @property
    def ring(self):
        return self._ring

    def _ring_or_raise(self):
        ring = self._ring
        if ring is not None:
            return ring
        # The store was unreachable at start: retry at most once per interval.
        if time.monotonic() >= self._retry_at and self._lock.acquire(blocking=False):
            try:
                if self._ring is None and time.monotonic() >= self._retry_at:
                    self.open()
            finally:
                self._lock.release()
        if self._ring is None:
            raise ImproperlyConfigured(f"keyroll.django could not load the keys of KEYROLL['KEYS']: {self._error}")
        return self._ring

    def current(self):
        """The key set of the ring's current generation (or a newer one)."""
        ring = self._ring_or_raise()
        if self._fail_closed_after is not None:
            self._refuse_if_failed_closed(ring)
        cached = self._current
        try:
            if cached is not None and cached.generation == ring.generation:
                return cached
            generation, key, verification_keys = ring.snapshot()
        except KeyrollError as error:  # closed
            raise ImproperlyConfigured(f"keyroll.django: {error}") from None
        with self._lock:
            cached = self._current
            if cached is not None and cached.generation == generation:
                return cached
            fresh = KeySet(generation, key, verification_keys, cached)
            if cached is None or generation > cached.generation:
                self._current = fresh
        return fresh

    def _refuse_if_failed_closed(self, ring):
        # FAIL_CLOSED_AFTER: once the store has not confirmed the keys for that
        # long, nothing may sign or verify. The health is read at most every
        # HEALTH_EVERY seconds (a status() builds a dict); the limit is hours.
        now = time.monotonic()
        if now >= self._health_at:
            self._failed_closed = ring.status()["health"] == "stale"
            self._health_at = now + HEALTH_EVERY
        if self._failed_closed:
            raise ImproperlyConfigured(
                "keyroll.django: the key store has not confirmed the keys for longer than "
                "KEYROLL['FAIL_CLOSED_AFTER']; nothing signs or verifies until it answers"
            )

    def status(self):
        """The ring's status(), or why there is none: ``unavailable`` (never opened), ``closed``."""
        try:
            ring = self._ring_or_raise()
            return ring.status()
        except ImproperlyConfigured:
            return {"health": "unavailable", "last_error": self._error, "staleness_seconds": None,
                    "generation": 0, "keys": []}
        except KeyrollError as error:  # closed
            return {"health": "closed", "last_error": str(error), "staleness_seconds": None,
                    "generation": 0, "keys": []}

    def after_fork_in_child(self):
        # The KeyRing restarts its own poller. A lock another thread of the
        # parent held at the fork would never be released here: a new one.
        self._lock = threading.Lock()


_live = None


def get():
    """This process's LiveKeys, or None when keyroll.django is disabled."""
    return _live


def _override(lazy, name):
    """(True, value) when an override of ``name`` is in force over the base settings."""
    wrapped = lazy._wrapped
    if wrapped is empty:
        lazy._setup(name)
        wrapped = lazy._wrapped
    base = type(lazy)._keyroll_base
    while wrapped is not base and isinstance(wrapped, UserSettingsHolder):
        if name in wrapped._deleted:
            raise AttributeError(name)
        if name in wrapped.__dict__:
            return True, wrapped.__dict__[name]
        wrapped = wrapped.default_settings
    return False, None


def _secret_key(lazy):
    found, value = _override(lazy, "SECRET_KEY")
    if found:
        if not value:
            raise ImproperlyConfigured("The SECRET_KEY setting must not be empty.")
        return value
    return _live.current().key


def _secret_key_fallbacks(lazy):
    found, value = _override(lazy, "SECRET_KEY_FALLBACKS")
    if found:
        return value
    return _live.current().fallbacks_now()


def _setattr(lazy, name, value):
    if name in NAMES:
        raise ImproperlyConfigured(
            f"settings.{name} follows the key ring of keyroll.django and cannot be assigned. "
            f"In tests use override_settings({name}=...) (or pytest-django's settings fixture), "
            "or turn the app off with KEYROLL['ENABLED'] = False."
        )
    LazySettings.__setattr__(lazy, name, value)


def _live_class(base_class, base_settings):
    return type(
        "Keyroll" + base_class.__name__,
        (base_class,),
        {
            "__module__": __name__,
            "__doc__": base_class.__doc__,
            "_keyroll_base": base_settings,
            "SECRET_KEY": property(_secret_key, doc="The key ring's signing key (an override in force wins)."),
            "SECRET_KEY_FALLBACKS": property(
                _secret_key_fallbacks, doc="The key ring's other verification keys (an override in force wins)."
            ),
            "__setattr__": _setattr,
        },
    )


def start():
    """Reads ``KEYROLL``, opens the key ring and makes the settings follow it (once per process)."""
    global _live
    if _live is not None:
        return _live  # apps re-populated (Django's own test runner does): keep the ring.
    config = conf.parse(getattr(settings, "KEYROLL", None))
    if not config.enabled:
        return None
    live = LiveKeys(config)
    live.open()
    _live = live
    if not hasattr(type(settings), "_keyroll_base"):
        base = settings._wrapped
        for name in NAMES:
            settings.__dict__.pop(name, None)
        # LazyObject shadows __class__ with a property (for isinstance()), so
        # assign through object's own descriptor.
        object.__dict__["__class__"].__set__(settings, _live_class(type(settings), base))
    os.register_at_fork(after_in_child=live.after_fork_in_child)
    return live
