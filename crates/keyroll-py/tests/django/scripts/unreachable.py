"""A key source that fails at start: a clear error on every read, in status() and in
`manage.py check`, never a crash; once the source answers (stdin says when), the keys load
without a restart.

Usage: unreachable.py URI. Prints a JSON line, waits for a line on stdin ("stop" ends it),
prints another."""

import io
import logging
import sys
import time

import django
from django.conf import settings

from setup_file_site import report

log = io.StringIO()
logging.basicConfig(stream=log, level=logging.INFO)
settings.configure(INSTALLED_APPS=["keyroll.django"], KEYROLL={"KEYS": sys.argv[1], "INTERVAL": 0.5},
                   LOGGING_CONFIG=None, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"])
django.setup()  # does not raise: like Django's own missing SECRET_KEY, only what needs the key fails
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import Client  # noqa: E402

from keyroll.django import live  # noqa: E402


def read():
    try:
        return "key" if settings.SECRET_KEY else "empty"
    except ImproperlyConfigured as error:
        return str(error)


from django.urls import path  # noqa: E402

from keyroll.django.views import ready  # noqa: E402

urlpatterns = [path("ready", ready)]
report(
    read=read(),
    status=live.get().status(),
    checks=[f"{m.id}: {m.msg}" for m in checks.run_checks(tags=["keyroll"])],
    ready=Client().get("/ready").status_code,
    log=log.getvalue(),
)
if sys.stdin.readline().strip() == "stop":
    sys.exit(0)
deadline = time.monotonic() + 20
while read() != "key" and time.monotonic() < deadline:
    time.sleep(0.1)
report(read=read(), health=live.get().status()["health"], ready=Client().get("/ready").status_code)
