"""Zero-downtime secret-key rotation for Python services, with keyroll's Rust core.

``keyroll.open(uri)`` returns a :class:`KeyRing` whose keys follow the store
(Vault, AWS Secrets Manager, GCP Secret Manager, Docker secrets, files, the
environment) without a restart. A refresher polls in its own threads and never
needs the GIL; reads are lock-free. See ``keyroll.flask`` and ``keyroll.django``.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._keyroll import Options

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

# Every open key ring, so the fork hooks can restart their refreshers.
_rings: "weakref.WeakSet[KeyRing]" = weakref.WeakSet()


def open(uri: str, **options: Unpack[Options]) -> KeyRing:  # noqa: A001 - the natural name: keyroll.open(uri)
    """Opens the key source ``uri`` and waits for a first good key set.

    ``options`` are the library's (``keyroll._keyroll.OPTIONS``, the table in
    docs/PYTHON.md): ``interval``, ``jitter``, ``clock_skew_margin``,
    ``activation_delay``, ``fallback_window``, ``fail_closed_after`` in seconds
    (int or float) and ``max_fallbacks``, a count; ``None`` keeps the default.
    Raises :class:`KeyrollError` with the reason (the message ``keyroll
    check`` prints) when no usable key set comes: unknown scheme, unreachable
    store, weak or empty keys; ``ValueError`` for a bad value, ``TypeError``
    for an unknown option.
    """
    ring = _keyroll.open(uri, **options)
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
