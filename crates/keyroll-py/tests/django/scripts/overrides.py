"""The app never fights an override in force: override_settings (and pytest-django's settings
fixture, which uses it) win while in force; the ring is back afterwards. Prints one JSON line."""

import sys

from setup_file_site import configure, report, write_keys

path, ring_key, old_key = sys.argv[1:4]
write_keys(path, ring_key, old_key)
configure(path, INTERVAL=60)
from django.conf import settings  # noqa: E402
from django.core import signing  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import override_settings  # noqa: E402

seen = {"ring": settings.SECRET_KEY == ring_key and settings.SECRET_KEY_FALLBACKS == [old_key]}
with override_settings(SECRET_KEY="pinned-in-a-test"):
    seen["key_override"] = settings.SECRET_KEY == "pinned-in-a-test"
    seen["fallbacks_still_ring"] = settings.SECRET_KEY_FALLBACKS == [old_key]
    seen["signer_uses_override"] = signing.Signer(salt="s").sign("v") == signing.Signer(
        key="pinned-in-a-test", salt="s").sign("v")
    with override_settings(SECRET_KEY_FALLBACKS=["f1"]):
        seen["nested"] = settings.SECRET_KEY == "pinned-in-a-test" and settings.SECRET_KEY_FALLBACKS == ["f1"]
    with override_settings(SECRET_KEY="inner"):
        seen["innermost_wins"] = settings.SECRET_KEY == "inner"
seen["ring_back"] = settings.SECRET_KEY == ring_key and settings.SECRET_KEY_FALLBACKS == [old_key]


@override_settings(SECRET_KEY="decorated")
def decorated():
    return settings.SECRET_KEY


seen["decorator"] = decorated() == "decorated"
with override_settings(SECRET_KEY=""):
    try:
        settings.SECRET_KEY
        seen["empty_refused"] = False
    except ImproperlyConfigured as error:
        seen["empty_refused"] = str(error) == "The SECRET_KEY setting must not be empty."
try:
    settings.SECRET_KEY = "pinned-value-xyz"
    seen["assignment_refused"] = False
except ImproperlyConfigured as error:
    seen["assignment_refused"] = "override_settings" in str(error) and "pinned-value-xyz" not in str(error)
seen["other_settings_assignable"] = (setattr(settings, "DEBUG", True), settings.DEBUG)[1] is True
report(**seen)
