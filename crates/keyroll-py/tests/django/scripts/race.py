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

Nothing here is timed. After each swap the swapping thread waits until the
readers have completed MIN_READS reads that *started after* that swap
completed, so every swap is read (counted per swap, in ``min_reads_per_swap``)
however slow or loaded the machine is; only a generous deadline turns a
reader that stopped running into an error.

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
MIN_READS = 4  # reads that start after each swap before the next swap may begin
STUCK = 120.0  # seconds without MIN_READS reads after a swap: the readers stopped running


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
    # after_swap[r][i]: reads of reader r that started once swap i had completed (and
    # before swap i + 1 did). One slot per reader: no two threads write one counter.
    after_swap = [[0] * (count + 1) for _ in range(readers)]

    def reader(slot):
        counts = after_swap[slot]
        reads = stale_key = stale_fallbacks = failures = 0
        while not stop.is_set():
            before = completed[0]
            got = generation_of[target.SECRET_KEY]
            fallbacks = target.SECRET_KEY_FALLBACKS
            reads += 1
            if got < before:
                stale_key += 1
            # Stale: the list comes from a generation older than `before`. Generation g's list
            # holds keys[g - 1] (and during its transition also keys[g]), and nothing newer; so
            # it is older than `before` exactly when it lacks keys[before - 1] and holds no key
            # of `before` or later. (A reader that slept through many swaps may get a newer
            # list from which keys[before - 1] has already dropped: not stale.)
            newest = max((generation_of[k] for k in fallbacks), default=-1)
            if before > 0 and keys[before - 1] not in fallbacks and newest < before:
                stale_fallbacks += 1
            if signer_check:
                try:
                    signing.Signer().unsign(tokens[before])
                except signing.BadSignature:
                    if completed[0] - before < KEEP - 1:
                        failures += 1
            counts[before] += 1
        with lock:
            tally["reads"] += reads
            tally["stale_key"] += stale_key
            tally["stale_fallbacks"] += stale_fallbacks
            tally["signer_failures"] += failures

    def reads_after(i):
        return sum(counts[i] for counts in after_swap)

    def wait_for_reads(i):
        deadline = time.monotonic() + STUCK
        while reads_after(i) < MIN_READS:
            if time.monotonic() > deadline:
                stop.set()
                raise SystemExit(f"the readers made no {MIN_READS} reads in {STUCK} s after swap {i}")
            time.sleep(0)

    threads = [threading.Thread(target=reader, args=(r,)) for r in range(readers)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    for i in range(1, count + 1):
        swap(i)
        tokens.append(signing.Signer(key=keys[i]).sign("x"))
        completed[0] = i
        wait_for_reads(i)
    elapsed = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join()
    tally["swaps"] = count
    # Reads that started after swap i completed and before swap i + 1 began.
    tally["min_reads_per_swap"] = min(reads_after(i) for i in range(1, count + 1))
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
