"""Live secret keys for Flask: ``KeyRoll(app, keys="vault://...")``.

Keeps ``app.secret_key`` and ``app.config["SECRET_KEY_FALLBACKS"]`` in step
with a :class:`keyroll.KeyRing`, in the order Flask >= 3.1.1 expects: the
current key in ``SECRET_KEY``, every other verifying key (pending keys of a
staged rotation and fallbacks) in ``SECRET_KEY_FALLBACKS``, oldest first, so
itsdangerous tries the newest first.

The keys are applied when the extension starts and again whenever the key
ring's generation changes, checked each time the app makes an application
context (``app.app_context()``, which Flask calls for every request before it
opens the session, and ``flask`` commands and ``with app.app_context()`` too):
one call into the key ring and one integer compare when nothing changed. (A
thin wrapper of ``app.app_context`` rather than the ``appcontext_pushed``
signal, whose dispatch alone cost about 1.5% of a minimal request.) Every intermediate state is valid: the
fallbacks grow first (old and new keys), then the key is swapped, then the
fallbacks shrink to the new set.

Once the key ring has failed closed (the store revoked the signing key, every
key expired, or ``fail_closed_after`` passed without the store confirming the
keys), the app's keys are withdrawn when the next app context is made
(before Flask opens the session, so no session loads with the revoked key)
and, until the store offers a usable key again, the app's session interface
raises :class:`keyroll.FailedClosed` when Flask opens the session, which
Flask answers with a 500; the first good key set restores the interface and
the keys without a restart. Nothing of this runs while the keys are good.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional

from flask import Flask
from flask.sessions import SessionInterface

import keyroll

__all__ = ["KeyRoll"]


class KeyRoll:
    """Keeps a Flask app's secret keys live from a keyroll source.

    ``keys`` is a key source URI (``vault://...``, ``aws-sm://...``,
    ``file:///...``); without it ``app.config["KEYROLL_KEYS"]`` is used. Other
    keyword arguments are :func:`keyroll.open`'s options (seconds).
    """

    def __init__(self, app: Optional[Flask] = None, keys: Optional[str] = None, **options: Any) -> None:
        self.ring: Optional[keyroll.KeyRing] = None
        self._app: Optional[Flask] = None
        self._applied = -1
        self._closed = False
        self._failed: Optional[str] = None
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app, keys, **options)

    def init_app(self, app: Flask, keys: Optional[str] = None, **options: Any) -> None:
        """Opens the key source (raising :class:`keyroll.KeyrollError` when it
        has no usable key set) and sets the app's keys."""
        uri = keys or app.config.get("KEYROLL_KEYS")
        if not uri:
            raise keyroll.KeyrollError(
                'KeyRoll needs a key source: KeyRoll(app, keys="vault://...") or app.config["KEYROLL_KEYS"]'
            )
        self.ring = keyroll.open(uri, **options)
        self._app = app
        app.extensions["keyroll"] = self
        self.sync()
        make_context = app.app_context

        def app_context() -> Any:
            try:
                self.sync()
            except keyroll.FailedClosed:
                pass  # keys withdrawn; opening the session raises, where Flask can report it
            return make_context()

        app.app_context = app_context  # type: ignore[method-assign]

    def sync(self) -> bool:
        """Applies the key ring's keys to the app if they changed; True when
        it wrote. Cheap when nothing changed: call it at will.

        Raises :class:`keyroll.FailedClosed` once the key ring has failed
        closed, after withdrawing the app's keys (nothing signs or verifies)."""
        ring, app = self.ring, self._app
        if ring is None or app is None or self._closed:
            return False
        try:
            if ring.serving_generation() == self._applied:
                return False
        except keyroll.FailedClosed as error:
            self._withdraw(app, str(error))
            raise
        with self._lock:
            generation, signing, verifying = ring.snapshot()
            if generation == self._applied:
                return False
            _apply(app, signing, [key for key in verifying if key != signing])
            self._applied = generation
            if self._failed is not None:
                refusing = app.session_interface
                if isinstance(refusing, _FailedClosedSessions):
                    app.session_interface = refusing.wrapped
                self._failed = None
            return True

    def status(self) -> Dict[str, Any]:
        """The key ring's :meth:`keyroll.KeyRing.status` (for a health view)."""
        if self.ring is None:
            raise keyroll.KeyrollError("KeyRoll is not initialised: call init_app(app)")
        return self.ring.status()

    def close(self) -> None:
        """Stops refreshing: the app keeps the keys it has, which no longer
        follow the store (as when the extension was never started). Idempotent."""
        self._closed = True
        if self.ring is not None:
            self.ring.close()

    def _withdraw(self, app: Flask, reason: str) -> None:
        with self._lock:
            app.config["SECRET_KEY"] = None
            app.config["SECRET_KEY_FALLBACKS"] = []
            self._applied = -1
            self._failed = reason
            if not isinstance(app.session_interface, _FailedClosedSessions):
                app.session_interface = _FailedClosedSessions(app.session_interface, reason)


class _FailedClosedSessions(SessionInterface):
    """The app's session interface while the key ring has failed closed: opening a
    session raises (Flask answers 500), so no request is served as if nothing happened."""

    def __init__(self, wrapped: SessionInterface, reason: str) -> None:
        self.wrapped = wrapped
        self.reason = reason

    def open_session(self, app: Flask, request: Any) -> Any:
        raise keyroll.FailedClosed(self.reason)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        self.wrapped.save_session(app, session, response)


def _apply(app: Flask, signing: str, others: List[str]) -> None:
    """Writes the keys so that any reader between two writes sees a valid
    pair: grow the fallbacks, swap the key, shrink the fallbacks."""
    config = app.config
    previous_key = config.get("SECRET_KEY")
    previous = list(config.get("SECRET_KEY_FALLBACKS") or [])
    # Flask >= 3.1.1 verifies with SECRET_KEY, then the fallbacks from last
    # to first: list them oldest first so the newest is tried first.
    fallbacks = list(reversed(others))
    grown = [k for k in previous if k not in fallbacks and k != signing]
    if previous_key and previous_key != signing and previous_key not in fallbacks:
        grown.append(previous_key)
    config["SECRET_KEY_FALLBACKS"] = grown + fallbacks
    config["SECRET_KEY"] = signing
    config["SECRET_KEY_FALLBACKS"] = fallbacks
