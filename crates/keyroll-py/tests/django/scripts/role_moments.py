"""Role moments with no refresh between them: a staged key activates at its `activates` time
and the old key's fallback window ends at its `expires` time, while the key ring polls once an
hour (its refresher wakes at each moment; a read checks the moment itself). Every read of the settings is timed: one that ended before a moment must show the roles
before it, one that started after it the roles after it (the descriptors check the next role
change on the coarse clock). Usage: role_moments.py KEYFILE OLD NEW. Prints one JSON line."""

import datetime
import json
import os
import sys
import time

from setup_file_site import configure, report

path, old, new = sys.argv[1:4]


def rfc3339(at):
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


activates = time.time() + 3.0
expires = activates + 1.0
with open(f"{path}.tmp", "w") as out:
    json.dump({"keys": [
        {"id": "v2", "key": new, "activates": rfc3339(activates)},
        {"id": "v1", "key": old, "expires": rfc3339(expires)},
    ]}, out)
os.replace(f"{path}.tmp", path)
configure(path, INTERVAL=3600, ACTIVATION_DELAY=0)
from django.conf import settings  # noqa: E402

from keyroll.django import live  # noqa: E402

names = {old: "old", new: "new"}
wrong = []
phases = {"before": 0, "activated": 0, "expired": 0}
while True:
    started = time.time()
    key, fallbacks = settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS
    ended = time.time()
    seen = (names[key], sorted({names[k] for k in fallbacks}))
    if ended < activates:
        phases["before"] += 1
        if seen != ("old", ["new"]):  # the staged key verifies, the old one signs
            wrong.append(["before", seen])
    elif activates <= started and ended < expires:
        phases["activated"] += 1
        if seen[0] != "new" or "old" not in seen[1]:
            wrong.append(["activated", seen])
    elif expires <= started:
        phases["expired"] += 1
        if seen[0] != "new" or "old" in seen[1]:
            wrong.append(["expired", seen])
        if started > expires + 0.5:
            break
report(wrong=wrong[:5], wrong_reads=len(wrong), phases=phases)
