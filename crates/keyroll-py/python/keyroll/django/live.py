"""``settings.SECRET_KEY`` and ``settings.SECRET_KEY_FALLBACKS`` that follow a key ring.

Django's ``LazySettings`` caches every setting it reads in its instance
``__dict__``, and its ``__setattr__`` pops that cache *before* it writes the
new value, so a reader in between caches the old key until the next
assignment. Assigning the settings is therefore not used at all: the
settings object gets a subclass of its own class (``settings.__class__``)
whose ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` are data descriptors
implemented in Rust (``keyroll._keyroll.LiveSetting``). A data descriptor
wins over the instance ``__dict__`` and is consulted before ``__getattr__``,
so no cache can hold a key, and every read returns the key ring's key set of
that moment (at least as new as the ring's generation when the read started).

A read costs one generation compare: the key's ``str`` and the fallbacks'
``list`` are built once per key-set generation (or role transition) and
handed out as Django hands out a static setting's objects. Every read also
applies keyroll's one rule: once the key ring has failed closed (the store
revoked the signing key, every key expired, or ``FAIL_CLOSED_AFTER`` passed
without the store confirming the keys, in this process or in the one it was
forked from), it raises ``ImproperlyConfigured``, and the readiness view
answers 503; the first good key set reopens it without a restart.

Django reads the key and then the fallbacks (``Signer.__init__``, the token
generator, the session auth hash), so a reader can take the key from one
generation and the fallbacks from the next. For ``TRANSITION_GRACE`` seconds
after this process first sees a generation whose signing key changed, the
fallbacks therefore also hold the new signing key (grown before the swap is
visible): such a reader still verifies what the new key signs. Keys the new
generation dropped are never added back, so a key the store revokes stops
verifying at once.

An override in force (``override_settings``, pytest-django's ``settings``
fixture; both wrap the settings in a ``UserSettingsHolder``) always wins.
"""

import logging
import os
import threading
import time
from typing import Any, Optional

from django.conf import LazySettings, UserSettingsHolder, settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import empty

import keyroll
from keyroll import KeyrollError, _keyroll

from . import conf

logger = logging.getLogger("keyroll.django")

TRANSITION_GRACE = 5.0
NAMES = ("SECRET_KEY", "SECRET_KEY_FALLBACKS")


class LiveKeys:
    """The key ring of one process, opened from the ``KEYROLL`` setting."""

    def __init__(self, config: conf.Config) -> None:
        self.config = config
        self._ring: Optional[keyroll.KeyRing] = None
        self._error: Optional[str] = None
        self.error_kind: Optional[str] = None
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self.descriptors: Optional[tuple[_keyroll.LiveSetting, _keyroll.LiveSetting]] = None

    def open(self) -> bool:
        """Opens the key ring; on failure records and logs the reason, which later reads raise."""
        try:
            ring = keyroll.open(self.config.keys, **self.config.options)
        except (KeyrollError, ValueError, TypeError) as error:
            self._error = str(error)
            self.error_kind = getattr(error, "kind", "config")
            self._retry_at = time.monotonic() + float(self.config.options.get("interval", 30.0))
            logger.error("keyroll.django: cannot load the keys of KEYROLL['KEYS']: %s", self._error)
            return False
        self._ring, self._error, self.error_kind = ring, None, None
        logger.info("keyroll.django: keys loaded, generation %s", ring.generation)
        return True

    @property
    def ring(self) -> Optional[keyroll.KeyRing]:
        return self._ring

    def reopen(self) -> keyroll.KeyRing:
        """The key ring, opened now if it could not be at start (at most once per interval),
        or ImproperlyConfigured with the reason. Called by the settings' descriptors."""
        ring = self._ring
        if ring is not None:
            return ring
        if time.monotonic() >= self._retry_at and self._lock.acquire(blocking=False):
            try:
                if self._ring is None and time.monotonic() >= self._retry_at:
                    self.open()
            finally:
                self._lock.release()
        if self._ring is None:
            raise ImproperlyConfigured(f"keyroll.django could not load the keys of KEYROLL['KEYS']: {self._error}")
        return self._ring

    def keys(self) -> tuple[str, list[str]]:
        """``(SECRET_KEY, SECRET_KEY_FALLBACKS)`` as the settings serve them now (outside a
        transition), or ImproperlyConfigured: unavailable, closed or failed closed."""
        assert self.descriptors is not None, "start() sets the descriptors"
        key, fallbacks = self.descriptors[0].keys()
        return key, list(fallbacks)

    def status(self) -> dict[str, Any]:
        """The ring's status(), or why there is none: ``unavailable`` (never opened), ``closed``."""
        try:
            ring = self.reopen()
            return ring.status()
        except ImproperlyConfigured:
            return {"health": "unavailable", "last_error": self._error, "staleness_seconds": None,
                    "generation": 0, "keys": []}
        except KeyrollError as error:  # closed
            return {"health": "closed", "last_error": str(error), "staleness_seconds": None,
                    "generation": 0, "keys": []}

    def after_fork_in_child(self) -> None:
        # The KeyRing restarts its own poller. A lock another thread of the
        # parent held at the fork would never be released here: a new one.
        self._lock = threading.Lock()


_live: Optional[LiveKeys] = None


def get() -> Optional[LiveKeys]:
    """This process's LiveKeys, or None when keyroll.django is disabled."""
    return _live


def _override(lazy: LazySettings, name: str) -> tuple[bool, Any]:
    """(True, value) when an override of ``name`` is in force over the base settings."""
    wrapped = lazy._wrapped
    if wrapped is empty:
        lazy._setup(name)
        wrapped = lazy._wrapped
    base = getattr(type(lazy), "_keyroll_base")
    while wrapped is not base and isinstance(wrapped, UserSettingsHolder):
        if name in wrapped._deleted:
            raise AttributeError(name)
        if name in wrapped.__dict__:
            return True, wrapped.__dict__[name]
        wrapped = wrapped.default_settings
    return False, None


def _lookup_override(lazy: LazySettings, name: str) -> tuple[bool, Any]:
    """What the descriptors ask while an override wraps the settings: (found, value)."""
    found, value = _override(lazy, name)
    if found and name == "SECRET_KEY" and not value:
        raise ImproperlyConfigured("The SECRET_KEY setting must not be empty.")
    return found, value


def _setattr(lazy: LazySettings, name: str, value: Any) -> None:
    if name in NAMES:
        raise ImproperlyConfigured(
            f"settings.{name} follows the key ring of keyroll.django and cannot be assigned. "
            f"In tests use override_settings({name}=...) (or pytest-django's settings fixture), "
            "or turn the app off with KEYROLL['ENABLED'] = False."
        )
    LazySettings.__setattr__(lazy, name, value)
    if name == "_wrapped":
        # override_settings and pytest-django swap the wrapped settings: from then on, until
        # the base settings are back, the descriptors ask _lookup_override first.
        cls = type(lazy)
        key: _keyroll.LiveSetting = getattr(cls, "SECRET_KEY")
        key.set_overridden(lazy.__dict__.get("_wrapped") is not getattr(cls, "_keyroll_base"))


def _live_class(
    base_class: type[LazySettings],
    base_settings: object,
    descriptors: tuple[_keyroll.LiveSetting, _keyroll.LiveSetting],
) -> type[LazySettings]:
    key, fallbacks = descriptors
    return type(
        "Keyroll" + base_class.__name__,
        (base_class,),
        {
            "__module__": __name__,
            "__doc__": base_class.__doc__,
            "_keyroll_base": base_settings,
            "SECRET_KEY": key,
            "SECRET_KEY_FALLBACKS": fallbacks,
            "__setattr__": _setattr,
        },
    )


def start() -> Optional[LiveKeys]:
    """Reads ``KEYROLL``, opens the key ring and makes the settings follow it (once per process)."""
    global _live
    if _live is not None:
        return _live  # apps re-populated (Django's own test runner does): keep the ring.
    config = conf.parse(getattr(settings, "KEYROLL", None))
    if not config.enabled:
        return None
    live = LiveKeys(config)
    live.open()
    live.descriptors = _keyroll.django_settings(
        live.ring,
        grace=TRANSITION_GRACE,
        improperly_configured=ImproperlyConfigured,
        lookup_override=_lookup_override,
        reopen=live.reopen,
    )
    _live = live
    if not hasattr(type(settings), "_keyroll_base"):
        base = settings._wrapped
        for name in NAMES:
            settings.__dict__.pop(name, None)
        # LazyObject shadows __class__ with a property (for isinstance()), so
        # assign through object's own descriptor.
        object.__dict__["__class__"].__set__(settings, _live_class(type(settings), base, live.descriptors))
    os.register_at_fork(after_in_child=live.after_fork_in_child)
    return live
