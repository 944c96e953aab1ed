"""FAIL_CLOSED_AFTER: once the store has not confirmed the keys for that long, settings refuse
the key (nothing signs or verifies), `check` says keyroll.E002, readiness answers 503; the
next good read reopens. Usage: fail_closed.py KEYFILE KEY. Prints one JSON line."""

import os
import sys
import time

from setup_file_site import configure, report, write_keys

path, key = sys.argv[1:3]
write_keys(path, key)
configure(path, INTERVAL=0.2, JITTER=0, FAIL_CLOSED_AFTER=1)
from django.conf import settings  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from keyroll.django import live  # noqa: E402


def read():
    try:
        return "key" if settings.SECRET_KEY == key else "other"
    except ImproperlyConfigured as error:
        return str(error)


def wait_for(health):
    deadline = time.monotonic() + 20
    while live.get().status()["health"] != health and time.monotonic() < deadline:
        time.sleep(0.05)


before = read()
os.remove(path)
wait_for("stale")
closed = read()
messages = [f"{m.id}: {m.msg}" for m in checks.run_checks(tags=["keyroll"])]
write_keys(path, key)
wait_for("healthy")
report(before=before, closed=closed, checks=messages, reopened=read())
