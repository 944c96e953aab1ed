"""The ``KEYROLL`` setting: checked once, with errors that name the key."""

import difflib
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .._keyroll import OPTIONS, check_option

# KEYROLL key -> keyroll.open() keyword: the library's table of options.
KEYWORDS = {name.upper(): name for name, _unit, _default, _doc in OPTIONS}
KNOWN = ("KEYS", "ENABLED", *KEYWORDS)


@dataclass(frozen=True)
class Config:
    keys: str
    enabled: bool = True
    # keyroll.open() keywords: seconds (int or float) and counts (int).
    options: dict[str, Any] = field(default_factory=dict)


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
    for name, keyword in KEYWORDS.items():
        if value.get(name) is not None:
            problem = check_option(keyword, value[name])
            if problem is not None:
                raise ImproperlyConfigured(f"KEYROLL[{name!r}] {problem}.")
            options[keyword] = value[name]
    return Config(keys=keys.strip(), enabled=enabled, options=options)
