"""A weak key published at run time is refused: the last good keys keep serving, status() and
`manage.py check` say why, and the weak key appears in no error, log or status.

Usage: weak_at_runtime.py KEYFILE GOOD WEAK. Prints one JSON line."""

import io
import json
import logging
import sys
import time

from setup_file_site import configure, report, write_keys

path, good, weak = sys.argv[1:4]
log = io.StringIO()
logging.basicConfig(stream=log, level=logging.DEBUG)
write_keys(path, good)
configure(path, INTERVAL=0.5, JITTER=0.1)
from django.conf import settings  # noqa: E402
from django.core import checks  # noqa: E402

from keyroll.django import live  # noqa: E402

write_keys(path, weak, good)
deadline = time.monotonic() + 20
while live.get().status()["health"] == "healthy" and time.monotonic() < deadline:
    time.sleep(0.02)
status = live.get().status()
messages = [f"{m.id}: {m.msg}" for m in checks.run_checks(tags=["keyroll"])]
still_good = settings.SECRET_KEY == good and settings.SECRET_KEY_FALLBACKS == []
ring = live.get().ring
ring.close()
ring.close()  # a second close() is a no-op
try:
    settings.SECRET_KEY
    after_close = "read"
except Exception as error:  # noqa: BLE001 - reported
    after_close = f"{type(error).__name__}: {error}"
text = json.dumps(status) + "\n".join(messages) + log.getvalue()
report(
    health=status["health"],
    last_error=status["last_error"],
    still_good=still_good,
    checks=messages,
    weak_key_leaked=weak in text,
    closed=ring.closed,
    after_close=after_close,
    status_after_close=live.get().status()["health"],
)
