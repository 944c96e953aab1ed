"""The LazySettings race, measured: reader threads against thousands of key swaps.

Usage: race.py SWAPS READERS CONTROL_SWAPS. Prints one JSON line.

A read is *stale* when it started after a swap had completed and returned the
key (or fallbacks) of an older generation. Swaps are real: the key source
(env://, Django's own SECRET_KEY / SECRET_KEY_FALLBACKS variables) changes, the
refresher is asked to poll at once (refresh_now) and the swap is complete when the
key ring's generation says so. (A watched key file would be as real but settles
20 ms per change: too slow for thousands of swaps.)
Readers also build django.core.signing.Signer() (which reads SECRET_KEY and
SECRET_KEY_FALLBACKS separately) and unsign the token of the newest completed
swap: it must verify.

The control runs the same readers against a plain LazySettings assigned the
way Django documents (settings.SECRET_KEY = ...): it shows the race the
harness detects.
"""

import json
import os
import secrets
import sys
import threading
import time

import django
from django.conf import LazySettings, settings

swaps, readers, control_swaps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
KEEP = 8  # keys in the source: the newest signs, the others are fallbacks


def key(i):
    return f"{i:08d}-" + secrets.token_hex(24)


keys = [key(i) for i in range(max(swaps, control_swaps) + 1)]
generation_of = {k: i for i, k in enumerate(keys)}


def publish(i):
    # The refresher reads the environment only when refresh_now() asks (the poll interval is
    # longer than the run), after this write and before the next one: never concurrently.
    os.environ["SECRET_KEY_FALLBACKS"] = ",".join(reversed(keys[max(0, i - KEEP + 1): i]))
    os.environ["SECRET_KEY"] = keys[i]


publish(0)
settings.configure(
    INSTALLED_APPS=["keyroll.django"],
    KEYROLL={"KEYS": "env://SECRET_KEY", "INTERVAL": 3600, "MAX_FALLBACKS": KEEP},
)
django.setup()
from django.core import signing  # noqa: E402

from keyroll.django import live  # noqa: E402

ring = live.get().ring
sys.setswitchinterval(1e-6)


def race(target, swap, count, signer_check):
    completed = [0]
    tokens = [signing.Signer(key=keys[0]).sign("x")]
    stop = threading.Event()
    tally = {"reads": 0, "stale_key": 0, "stale_fallbacks": 0, "signer_failures": 0}
    lock = threading.Lock()

    def reader():
        reads = stale_key = stale_fallbacks = failures = 0
        while not stop.is_set():
            before = completed[0]
            got = generation_of[target.SECRET_KEY]
            fallbacks = target.SECRET_KEY_FALLBACKS
            reads += 1
            if got < before:
                stale_key += 1
            # (Unless the reader slept through so many swaps that the key left the set.)
            if before > 0 and keys[before - 1] not in fallbacks and completed[0] - before < KEEP - 1:
                stale_fallbacks += 1
            if signer_check:
                try:
                    signing.Signer().unsign(tokens[before])
                except signing.BadSignature:
                    if completed[0] - before < KEEP - 1:
                        failures += 1
        with lock:
            tally["reads"] += reads
            tally["stale_key"] += stale_key
            tally["stale_fallbacks"] += stale_fallbacks
            tally["signer_failures"] += failures

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    for i in range(1, count + 1):
        swap(i)
        tokens.append(signing.Signer(key=keys[i]).sign("x"))
        completed[0] = i
    elapsed = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join()
    tally["swaps"] = count
    tally["seconds"] = round(elapsed, 2)
    return tally


def ring_swap(i):
    before = ring.generation
    publish(i)
    ring.refresh_now()
    deadline = time.monotonic() + 10
    while ring.generation == before or ring.signing_key != keys[i]:
        if time.monotonic() > deadline:
            raise SystemExit(f"the key ring did not pick up swap {i}")
        time.sleep(0.0001)


result = {"keyroll": race(settings, ring_swap, swaps, signer_check=True)}

# The control: Django's LazySettings assigned in place, key first, then the fallbacks.
control = LazySettings()
control.configure(SECRET_KEY=keys[0], SECRET_KEY_FALLBACKS=[])


class ReadInTheWindow(type(control._wrapped)):
    """Django's settings holder, plus one read of the key from inside LazySettings'
    assignment window (after `__setattr__` popped the cache, before the value is stored):
    what a reader thread scheduled there does. A scheduler may or may not put a reader
    there on a given run; this puts one there on every swap, so the control is
    deterministic."""

    def __setattr__(self, name, value):
        if name == "SECRET_KEY":
            getattr(control, "SECRET_KEY")
        super().__setattr__(name, value)


control._wrapped.__class__ = ReadInTheWindow


def assign(i):
    control.SECRET_KEY_FALLBACKS = keys[max(0, i - KEEP + 1): i][::-1]
    control.SECRET_KEY = keys[i]


result["control"] = race(control, assign, control_swaps, signer_check=False)
# After the last assignment has returned, Django's settings still serve the key before it.
result["control"]["stale_after_last_swap"] = control.SECRET_KEY != keys[control_swaps]
print(json.dumps(result))
