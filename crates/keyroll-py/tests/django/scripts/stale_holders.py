"""What keeps an old key despite keyroll.django, and the fix for each (docs/PYTHON.md).

Usage: stale_holders.py KEYFILE OLD NEW. Prints one JSON line."""

import sys
import time

from setup_file_site import configure, report, write_keys

path, old, new = sys.argv[1:4]
write_keys(path, old)
configure(path, INTERVAL=0.5, JITTER=0.1)
from django.conf import settings  # noqa: E402
from django.core import signing  # noqa: E402

at_import = signing.Signer(salt="s")  # a Signer built at import, e.g. at module level
copied = settings.SECRET_KEY  # a package that copies the key into its own settings at import

write_keys(path, new, old)
deadline = time.monotonic() + 20
while settings.SECRET_KEY != new and time.monotonic() < deadline:
    time.sleep(0.02)


def signed_with(key, value="v", salt="s"):
    return signing.Signer(key=key, salt=salt).sign(value)


def verifies(signer, token):
    try:
        return signer.unsign(token) == "v"
    except signing.BadSignature:
        return False


# get_cookie_signer() hands the fallbacks over as a one-shot map: a reused instance
# verifies with them once, then no more.
reused = signing.get_cookie_signer(salt="c")
old_cookie = signing.TimestampSigner(key="django.http.cookies" + old, salt="c").sign("v")  # SIGNING_BACKEND
first = verifies(reused, old_cookie)
second = verifies(reused, old_cookie)

report(
    rotated=settings.SECRET_KEY == new and old in settings.SECRET_KEY_FALLBACKS,
    at_import_signs_with_old=at_import.sign("v") == signed_with(old),
    at_import_cannot_verify_new=not verifies(at_import, signed_with(new)),
    per_call_signs_with_new=signing.Signer(salt="s").sign("v") == signed_with(new),
    per_call_verifies_old=signing.Signer(salt="s").unsign(signed_with(old)) == "v",
    copied_is_old=copied == old,
    reused_cookie_signer_first=first,
    reused_cookie_signer_second=second,
    fresh_cookie_signer=verifies(signing.get_cookie_signer(salt="c"), old_cookie),
)
