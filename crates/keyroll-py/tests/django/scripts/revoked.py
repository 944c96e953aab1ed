"""The only key revoked in the store (MODE disabled) or past its expiry (MODE expired): nothing
signs or verifies through any door, the framework reports it, and a new key reopens everything
without a restart. Usage: revoked.py KEYFILE MODE KEY NEW. Prints one JSON line."""

import datetime
import json
import os
import sys
import time

from setup_file_site import configure, report

path, mode, key, new = sys.argv[1:5]


def rfc3339(at):
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def write(*entries):
    with open(f"{path}.tmp", "w") as out:
        json.dump({"keys": list(entries)}, out)
    os.replace(f"{path}.tmp", path)


expiry = time.time() + 2.0
v1 = {"id": "v1", "key": key, **({"expires": rfc3339(expiry)} if mode == "expired" else {})}
write(v1)
configure(path, INTERVAL=0.2, JITTER=0)
from django.conf import settings  # noqa: E402
from django.core import checks, signing  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import RequestFactory  # noqa: E402

import keyroll  # noqa: E402
from keyroll.django import live, views  # noqa: E402

ring = live.get().ring
native = ring.native_signer("n")
django_signer = ring.django_signer("d")


def outcome(call):
    try:
        call()
        return "ok"
    except Exception as error:  # noqa: BLE001 - what each door raises is the point
        return type(error).__name__


def doors(token, native_token, signed):
    return {
        "SECRET_KEY": outcome(lambda: settings.SECRET_KEY),
        "SECRET_KEY_FALLBACKS": outcome(lambda: settings.SECRET_KEY_FALLBACKS),
        "signing.loads": outcome(lambda: signing.loads(token)),
        "signing.dumps": outcome(lambda: signing.dumps("new")),
        "ring.signing_key": outcome(lambda: ring.signing_key),
        "ring.verification_keys": outcome(lambda: ring.verification_keys),
        "ring.snapshot": outcome(ring.snapshot),
        "native.sign": outcome(lambda: native.sign("x")),
        "native.unsign": outcome(lambda: native.unsign(native_token)),
        "django_signer.sign": outcome(lambda: django_signer.sign("x")),
        "django_signer.unsign": outcome(lambda: django_signer.unsign(signed)),
        "ready": views.ready(RequestFactory().get("/ready")).status_code,
        "checks": sorted({m.id for m in checks.run_checks(tags=["keyroll"])}),
    }


def wait_for(health):
    deadline = time.monotonic() + 20
    while ring.status()["health"] != health:
        if time.monotonic() > deadline:
            raise SystemExit(f"health never became {health}: {ring.status()}")
        time.sleep(0.02)


token, native_token, signed = signing.dumps("before"), native.sign("before"), django_signer.sign("before")
before = doors(token, native_token, signed)
if mode == "disabled":
    write(dict(v1, state="disabled"))
else:
    while time.time() < expiry:
        time.sleep(0.05)
wait_for("stale")
try:
    settings.SECRET_KEY
    message = None
except ImproperlyConfigured as error:
    message = str(error)
closed = doors(token, native_token, signed)
failed_closed_type = outcome(lambda: ring.signing_key) == keyroll.FailedClosed.__name__
status = ring.status()
write({"id": "v2", "key": new}, dict(v1, state="disabled"))
wait_for("healthy")
reopened = doors(signing.dumps("again"), native.sign("again"), django_signer.sign("again"))
reopened["old token"] = outcome(lambda: signing.loads(token))
reopened["new key"] = settings.SECRET_KEY == new
report(before=before, closed=closed, message=message, failed_closed_type=failed_closed_type,
       status={"health": status["health"], "last_error": status["last_error"]}, reopened=reopened)
