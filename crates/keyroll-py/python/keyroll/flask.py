"""Live secret keys for Flask: ``KeyRoll(app, keys="vault://...")``.

Keeps ``app.secret_key`` and ``app.config["SECRET_KEY_FALLBACKS"]`` in step
with a :class:`keyroll.KeyRing`, in the order Flask >= 3.1.1 expects: the
current key in ``SECRET_KEY``, every other verifying key (pending keys of a
staged rotation and fallbacks) in ``SECRET_KEY_FALLBACKS``, oldest first, so
itsdangerous tries the newest first.

The keys are applied when the extension starts and again whenever the key
ring's generation changes, checked each time an application context is pushed
(every request, before Flask opens the session; ``flask`` commands too): one
integer compare when nothing changed. Every intermediate state is valid: the
fallbacks grow first (old and new keys), then the key is swapped, then the
fallbacks shrink to the new set.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional

from flask import Flask, appcontext_pushed

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
        appcontext_pushed.connect(self._on_app_context, app, weak=False)

    def _on_app_context(self, sender: Flask, **_: Any) -> None:
        self.sync()

    def sync(self) -> bool:
        """Applies the key ring's keys to the app if they changed; True when
        it wrote. Cheap when nothing changed: call it at will."""
        ring, app = self.ring, self._app
        if ring is None or app is None or ring.generation == self._applied:
            return False
        with self._lock:
            generation, signing, verifying = ring.snapshot()
            if generation == self._applied:
                return False
            _apply(app, signing, [key for key in verifying if key != signing])
            self._applied = generation
            return True

    def status(self) -> dict:
        """The key ring's :meth:`keyroll.KeyRing.status` (for a health view)."""
        if self.ring is None:
            raise keyroll.KeyrollError("KeyRoll is not initialised: call init_app(app)")
        return self.ring.status()

    def close(self) -> None:
        """Stops refreshing; the app keeps the keys it has."""
        if self.ring is not None:
            self.ring.close()


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
