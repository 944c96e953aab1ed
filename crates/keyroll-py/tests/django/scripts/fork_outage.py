"""A worker forked during a store outage keeps FAIL_CLOSED_AFTER: once the limit passes, the
child says stale and refuses, like its parent, although its own poller never reached the store.
Usage: fork_outage.py KEYFILE KEY. Prints one JSON line from the parent."""

import json
import os
import sys
import time

from setup_file_site import configure, report, write_keys

path, key = sys.argv[1:3]
write_keys(path, key)
configure(path, INTERVAL=0.2, JITTER=0, FAIL_CLOSED_AFTER=2)
from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from keyroll.django import live  # noqa: E402


def seen():
    try:
        read = "key" if settings.SECRET_KEY == key else "other"
    except ImproperlyConfigured as error:
        read = str(error)
    return {"health": live.get().status()["health"], "read": read}


def after_the_limit():
    deadline = time.monotonic() + 20
    while live.get().status()["health"] != "stale" and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen()


assert seen() == {"health": "healthy", "read": "key"}, seen()
os.remove(path)  # the store is gone
time.sleep(0.5)  # the parent has seen it fail, well before the 2 s limit
at_fork = seen()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    child = {"at_fork": seen(), "later": after_the_limit()}
    os.write(write, json.dumps(child).encode())
    os._exit(0)
os.close(write)
parent = after_the_limit()
child = json.loads(os.read(read, 65536).decode())
os.waitpid(pid, 0)
report(at_fork=at_fork, parent=parent, child=child)
