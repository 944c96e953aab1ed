"""The ``KEYROLL`` setting: checked once, with errors that name the key."""

import difflib
from dataclasses import dataclass, field
from typing import Any, Union

from django.core.exceptions import ImproperlyConfigured

# KEYROLL key -> keyroll.open() keyword.
DURATIONS = {
    "INTERVAL": "interval",
    "JITTER": "jitter",
    "CLOCK_SKEW_MARGIN": "clock_skew_margin",
    "FALLBACK_WINDOW": "fallback_window",
    "FAIL_CLOSED_AFTER": "fail_closed_after",
    "ACTIVATION_DELAY": "activation_delay",
}
COUNTS = {"MAX_FALLBACKS": "max_fallbacks"}
KNOWN = ("KEYS", "ENABLED", *DURATIONS, *COUNTS)


@dataclass(frozen=True)
class Config:
    keys: str
    enabled: bool = True
    # keyroll.open() keywords: seconds (int or float) and counts (int).
    options: dict[str, Any] = field(default_factory=dict)


def _number(name: str, value: Any, kind: Union[type[int], tuple[type[int], type[float]]]) -> Union[int, float]:
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an int" if kind is int else "a number of seconds (int or float)"
        raise ImproperlyConfigured(f"KEYROLL[{name!r}] must be {expected}, not {type(value).__name__}.")
    if value < 0:
        raise ImproperlyConfigured(f"KEYROLL[{name!r}] must not be negative.")
    return value


def parse(value: object) -> Config:
    """The ``KEYROLL`` setting as a :class:`Config`, or ImproperlyConfigured."""
    if value is None:
        raise ImproperlyConfigured(
            "keyroll.django is in INSTALLED_APPS but the KEYROLL setting is missing: set "
            "KEYROLL = {'KEYS': 'vault:///secret/myapp'} (any keyroll key source URI)."
        )
    if not isinstance(value, dict):
        raise ImproperlyConfigured(
            f"KEYROLL must be a dict such as {{'KEYS': 'vault:///secret/myapp'}}, not {type(value).__name__}."
        )
    for name in value:
        if name not in KNOWN:
            close = difflib.get_close_matches(str(name).upper(), KNOWN, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ImproperlyConfigured(
                f"KEYROLL has an unknown key {name!r}.{hint} Known keys: {', '.join(KNOWN)}."
            )
    enabled = value.get("ENABLED", True)
    if not isinstance(enabled, bool):
        raise ImproperlyConfigured("KEYROLL['ENABLED'] must be True or False.")
    keys = value.get("KEYS")
    if not isinstance(keys, str) or not keys.strip():
        raise ImproperlyConfigured(
            "KEYROLL['KEYS'] must be a key source URI such as 'vault:///secret/myapp' or 'file:///etc/myapp/keys'."
        )
    options: dict[str, Any] = {}
    for name, keyword in DURATIONS.items():
        if name in value and value[name] is not None:
            options[keyword] = _number(name, value[name], (int, float))
    for name, keyword in COUNTS.items():
        if name in value and value[name] is not None:
            options[keyword] = _number(name, value[name], int)
    return Config(keys=keys.strip(), enabled=enabled, options=options)
