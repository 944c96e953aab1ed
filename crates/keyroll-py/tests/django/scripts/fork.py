"""A worker forked after AppConfig.ready() refreshes on its own.

Usage: fork.py KEYFILE OLD NEW. The parent opens the keys (OLD), forks, and
rewrites the key file to NEW only after the fork; the child, whose poller the
parent's threads cannot serve, must see NEW in settings.SECRET_KEY (and OLD
in SECRET_KEY_FALLBACKS) by itself. Prints one JSON line from the parent.
"""

import os
import sys
import time

from setup_file_site import configure, report, write_keys

path, old, new = sys.argv[1:4]
write_keys(path, old)
configure(path, INTERVAL=0.5, JITTER=0.1)
from django.conf import settings  # noqa: E402

assert settings.SECRET_KEY == old
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(write)
    os.read(read, 1)  # the parent has rewritten the file
    deadline = time.monotonic() + 20
    while settings.SECRET_KEY != new:
        if time.monotonic() > deadline:
            os._exit(1)
        time.sleep(0.02)
    os._exit(0 if old in settings.SECRET_KEY_FALLBACKS else 2)
os.close(read)
write_keys(path, new, old)
os.write(write, b"x")
_, status = os.waitpid(pid, 0)
report(child_exit=os.waitstatus_to_exitcode(status), parent_pid=os.getpid(), child_pid=pid)
