"""Zero-downtime secret-key rotation for Python services, with keyroll's Rust core.

``keyroll.open(uri)`` returns a :class:`KeyRing` whose keys follow the store
(Vault, AWS Secrets Manager, GCP Secret Manager, Docker secrets, files, the
environment) without a restart. A refresher polls in its own threads and never
needs the GIL; reads are lock-free. See ``keyroll.flask`` and ``keyroll.django``.
"""

from __future__ import annotations

import os
import weakref
from typing import Optional, Union

from . import _keyroll
from ._keyroll import (
    BadSignature,
    DjangoSigner,
    FailedClosed,
    Fernet,
    InvalidToken,
    KeyRing,
    KeyrollError,
    NativeSigner,
    SignatureExpired,
    Verified,
    rotate,
)

__all__ = [
    "BadSignature",
    "DjangoSigner",
    "FailedClosed",
    "Fernet",
    "InvalidToken",
    "KeyRing",
    "KeyrollError",
    "NativeSigner",
    "SignatureExpired",
    "Verified",
    "open",
    "rotate",
]

Seconds = Union[int, float]

# Every open key ring, so the fork hooks can restart their refreshers.
_rings: "weakref.WeakSet[KeyRing]" = weakref.WeakSet()


def open(  # noqa: A001 - the natural name: keyroll.open(uri)
    uri: str,
    *,
    interval: Seconds = 30.0,
    jitter: Optional[Seconds] = None,
    clock_skew_margin: Optional[Seconds] = None,
    fallback_window: Optional[Seconds] = None,
    max_fallbacks: Optional[int] = None,
    fail_closed_after: Optional[Seconds] = None,
    activation_delay: Optional[Seconds] = None,
) -> KeyRing:
    """Opens the key source ``uri`` and waits for a first good key set.

    Durations are seconds (int or float). Raises :class:`KeyrollError` with the
    reason (the message ``keyroll check`` prints) when no usable key set comes:
    unknown scheme, unreachable store, weak or empty keys.
    """
    ring = _keyroll.open(
        uri,
        interval=float(interval),
        jitter=None if jitter is None else float(jitter),
        clock_skew_margin=None if clock_skew_margin is None else float(clock_skew_margin),
        fallback_window=None if fallback_window is None else float(fallback_window),
        max_fallbacks=max_fallbacks,
        fail_closed_after=None if fail_closed_after is None else float(fail_closed_after),
        activation_delay=None if activation_delay is None else float(activation_delay),
    )
    _rings.add(ring)
    return ring


def _before_fork() -> None:
    for ring in list(_rings):
        ring._before_fork()


def _after_fork_in_child() -> None:
    for ring in list(_rings):
        ring._after_fork_in_child()


# gunicorn --preload, uWSGI and multiprocessing fork after import: the
# refresher's threads do not survive, so every child starts its own.
os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
