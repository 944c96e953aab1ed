"""A key swap through the real settings: the fallbacks grow before the new key is seen, and
shrink once the grace is over. Usage: transition.py KEYFILE. Prints one JSON line."""

import secrets
import sys
import time

from setup_file_site import configure, report, write_keys

from keyroll.django import live

GRACE = 1.0
path = sys.argv[1]
keys = {name: f"{name}-" + secrets.token_hex(24) for name in ("a", "b", "c", "old")}
name_of = {key: name for name, key in keys.items()}
write_keys(path, keys["a"], keys["old"])
live.TRANSITION_GRACE = GRACE  # read once, when the app starts
configure(path, INTERVAL=0.1, JITTER=0)
from django.conf import settings  # noqa: E402
from django.core import signing  # noqa: E402

ring = live.get().ring


def seen():
    return {"key": name_of[settings.SECRET_KEY], "fallbacks": [name_of[k] for k in settings.SECRET_KEY_FALLBACKS]}


def publish(*names):
    generation = ring.generation
    write_keys(path, *(keys[name] for name in names))
    deadline = time.monotonic() + 20
    while ring.generation == generation:
        if time.monotonic() > deadline:
            raise SystemExit("the key ring did not pick up the new file")
        time.sleep(0.01)


def verifies(key, fallbacks, name):
    token = signing.Signer(key=keys[name], salt="t").sign("v")
    try:
        signing.Signer(key=key, fallback_keys=fallbacks, salt="t").unsign(token)
        return True
    except signing.BadSignature:
        return False


before = seen()
key_before = settings.SECRET_KEY
publish("b", "a")
during = seen()
# The key of the generation before with the fallbacks of the generation after.
fallbacks_after = settings.SECRET_KEY_FALLBACKS
mixed = {name: verifies(key_before, fallbacks_after, name) for name in ("a", "b", "old")}
same_object = settings.SECRET_KEY is settings.SECRET_KEY and fallbacks_after is settings.SECRET_KEY_FALLBACKS
time.sleep(GRACE + 0.2)
after = seen()
publish("b", "c", "a")
report(before=before, during=during, mixed_verifies=mixed, after=after, same_key=seen(), same_object=same_object)
