"""Django 5.2 peer for keyroll-django's interop tests.

argv[1] is a JSON list of operations; stdout is a JSON list of results, one per
operation: {"ok": value} or {"error": exception class name, "message": str}.
Each operation names the keys (SECRET_KEY first, then SECRET_KEY_FALLBACKS) as
{"text": str} or {"hex": bytes}, and optionally a frozen "time" for
django.core.signing.
"""
import json
import sys
import time as real_time

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="configured-later-configured-later-configured-later",
    INSTALLED_APPS=["django.contrib.sessions"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
)
django.setup()

from django.contrib.sessions.backends.signed_cookies import SessionStore  # noqa: E402
from django.core import signing  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402

assert django.get_version() == "5.2.19", django.get_version()


class FrozenTime:
    def __init__(self, at):
        self.at = at

    def time(self):
        return self.at


def key(spec):
    return bytes.fromhex(spec["hex"]) if "hex" in spec else spec["text"]


def signer_options(op):
    return {name: op[name] for name in ("salt", "sep", "algorithm") if name in op}


def run(op):
    settings.SECRET_KEY = key(op["keys"][0])
    settings.SECRET_KEY_FALLBACKS = [key(k) for k in op["keys"][1:]]
    settings.SIGNED_COOKIE_LEGACY_SALT_FALLBACK = op.get("legacy_fallback", True)
    signing.time = FrozenTime(op["time"]) if op.get("time") is not None else real_time
    kind = op["op"]
    if kind == "sign":
        return signing.Signer(**signer_options(op)).sign(op["value"])
    if kind == "unsign":
        return signing.Signer(**signer_options(op)).unsign(op["token"])
    if kind == "ts_sign":
        return signing.TimestampSigner(**signer_options(op)).sign(op["value"])
    if kind == "ts_unsign":
        return signing.TimestampSigner(**signer_options(op)).unsign(op["token"], max_age=op.get("max_age"))
    if kind == "sign_object":
        return signing.Signer(**signer_options(op)).sign_object(op["value"], compress=op.get("compress", False))
    if kind == "unsign_object":
        return signing.Signer(**signer_options(op)).unsign_object(op["token"])
    if kind == "dumps":
        salt = op.get("salt", "django.core.signing")
        return signing.dumps(json.loads(op["json"]), salt=salt, compress=op.get("compress", False))
    if kind == "dumps_repeated":
        return signing.dumps(op["text"] * op["count"], compress=True)
    if kind == "loads":
        salt = op.get("salt", "django.core.signing")
        return signing.loads(op["token"], salt=salt, max_age=op.get("max_age"))
    if kind == "set_cookie":
        response = HttpResponse()
        response.set_signed_cookie(op["name"], op["value"], salt=op.get("salt", ""))
        return response.cookies[op["name"]].value
    if kind == "set_legacy_cookie":
        # What Django before the CVE-2026-6873 fix set: salt = name + salt.
        legacy_salt = signing._cookie_signer_legacy_salt(op["name"], op.get("salt", ""))
        return signing.get_cookie_signer(salt=legacy_salt).sign(op["value"])
    if kind == "get_cookie":
        request = HttpRequest()
        request.COOKIES[op["name"]] = op["token"]
        return request.get_signed_cookie(op["name"], salt=op.get("salt", ""), max_age=op.get("max_age"))
    if kind == "session_save":
        session = SessionStore()
        for name, value in json.loads(op["json"]).items():
            session[name] = value
        session.save()
        return session.session_key
    if kind == "session_load":
        # SessionStore.load() swallows errors into an empty session; call what
        # it calls so failures show.
        session = SessionStore(session_key=op["token"])
        return signing.loads(
            session.session_key,
            serializer=session.serializer,
            max_age=session.get_session_cookie_age(),
            salt="django.contrib.sessions.backends.signed_cookies",
        )
    raise ValueError("unknown operation %r" % kind)


results = []
for op in json.loads(sys.argv[1]):
    try:
        results.append({"ok": run(op)})
    except Exception as error:  # reported to the Rust side, which asserts on it
        results.append({"error": type(error).__name__, "message": str(error)})
print(json.dumps(results))
