"""``manage.py check`` checks for keyroll.django (ids keyroll.E001..., never key material)."""

from typing import Any, Optional, Sequence

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import live

# Django's own standard for a secret key (django.core.checks.security.base).
DJANGO_MIN_LENGTH = 50
DJANGO_MIN_UNIQUE = 5
DJANGO_INSECURE_PREFIX = "django-insecure-"


# keyroll.E001's hint, by why the key ring could not be opened (KeyrollError.kind).
E001_HINTS = {
    "config": "Fix KEYROLL['KEYS']: it must be a key source URI keyroll knows (see `keyroll --help`).",
    "keys": "The store answered, but with no usable key (empty, or weaker than keyroll accepts): publish a "
    "strong key, e.g. `keyroll rotate --keys URI` or `manage.py keyroll rotate`.",
    "unavailable": "Anything that signs raises ImproperlyConfigured until the store answers.",
}


def weak_by_django_standard(key: str) -> bool:
    return (
        len(key) < DJANGO_MIN_LENGTH
        or len(set(key)) < DJANGO_MIN_UNIQUE
        or key.startswith(DJANGO_INSECURE_PREFIX)
    )


def check_keys(app_configs: Optional[Sequence[AppConfig]] = None, **kwargs: Any) -> list[checks.CheckMessage]:
    keys = live.get()
    if keys is None:
        return []
    found: list[checks.CheckMessage] = []
    status = keys.status()
    # Whether the store is shared, and the activation delay in force, come from the key ring
    # (the store's own answer: the agent's file declares "reach": "shared").
    if status.get("reach") == "shared" and status.get("activation_delay_seconds") == 0:
        found.append(
            checks.Warning(
                "KEYROLL['ACTIVATION_DELAY'] is 0 with a key store that several hosts share: the first "
                "process to poll a new key signs with it before the others can verify it, so users are "
                "logged out at every rotation.",
                hint="Remove ACTIVATION_DELAY (the default is INTERVAL + JITTER + CLOCK_SKEW_MARGIN).",
                id="keyroll.W001",
            )
        )
    if keys.ring is None:
        found.append(
            checks.Error(
                f"keyroll.django cannot load the keys of KEYROLL['KEYS']: {status['last_error']}",
                hint=E001_HINTS[keys.error_kind if keys.error_kind in E001_HINTS else "unavailable"],
                id="keyroll.E001",
            )
        )
        return found
    if status["health"] == "stale":
        found.append(
            checks.Error(
                f"The key store has not confirmed the keys for longer than FAIL_CLOSED_AFTER: {status['last_error']}",
                id="keyroll.E002",
            )
        )
        return found
    if status["health"] != "healthy":
        found.append(
            checks.Warning(
                f"The key store's last refresh failed, the last good keys serve: {status['last_error']}",
                id="keyroll.W002",
            )
        )
    try:
        key, fallbacks = keys.keys()
    except ImproperlyConfigured as error:  # failed closed since the status was read
        found.append(checks.Error(str(error), id="keyroll.E002"))
        return found
    roles = [("the signing key", key)] + [
        (f"verification key {n}", fallback) for n, fallback in enumerate(fallbacks, start=1)
    ]
    for role, key in roles:
        if weak_by_django_standard(key):
            found.append(
                checks.Warning(
                    f"keyroll: {role} is weaker than Django's standard (at least {DJANGO_MIN_LENGTH} "
                    f"characters, {DJANGO_MIN_UNIQUE} distinct, no '{DJANGO_INSECURE_PREFIX}' prefix).",
                    hint="Publish a stronger key: `manage.py keyroll rotate` (or `keyroll rotate --keys URI`).",
                    id="keyroll.W003",
                )
            )
    return found


def register() -> None:
    checks.register(check_keys, "keyroll")
