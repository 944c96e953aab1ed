"""Flask 3.1 peer for keyroll-flask's interop tests: Flask's own
SecureCookieSessionInterface, in a request context.

argv[1] is a JSON list of operations; stdout is a JSON list of results, one per
operation: {"ok": value} or {"error": exception class name, "message": str}.
Each operation gives "secret_key", "fallbacks" (SECRET_KEY_FALLBACKS, as Flask
lists them) and optionally a frozen "time" for itsdangerous.
  {"op": "save", "tagged": tagged JSON}  -> the session cookie's value
  {"op": "open", "cookie": str}          -> the session as tagged JSON, "" if Flask
                                            started an empty session instead
  {"op": "loads", "cookie": str}         -> the same through the serializer, so
                                            errors show (open_session swallows them)
"""
import importlib.metadata
import json
import sys
import time as real_time

import flask
import itsdangerous.timed
from flask.sessions import SecureCookieSession

assert importlib.metadata.version("flask") == "3.1.3", importlib.metadata.version("flask")


class FrozenTime:
    def __init__(self, at):
        self.at = at

    def time(self):
        return self.at


def run(op):
    app = flask.Flask(__name__)
    app.secret_key = op["secret_key"]
    app.config["SECRET_KEY_FALLBACKS"] = op["fallbacks"]
    itsdangerous.timed.time = FrozenTime(op["time"]) if op.get("time") is not None else real_time
    interface = app.session_interface
    kind = op["op"]
    if kind == "save":
        with app.test_request_context():
            session = SecureCookieSession(interface.serializer.loads(op["tagged"]))
            session.modified = True
            response = app.response_class()
            interface.save_session(app, session, response)
            header = response.headers.getlist("Set-Cookie")[0]
            return header.split(";")[0].split("=", 1)[1]
    if kind == "open":
        with app.test_request_context(headers={"Cookie": "session=" + op["cookie"]}):
            session = interface.open_session(app, flask.request)
            return interface.serializer.dumps(dict(session)) if session else ""
    if kind == "loads":
        with app.test_request_context():
            serializer = interface.get_signing_serializer(app)
            max_age = int(app.permanent_session_lifetime.total_seconds())
            return interface.serializer.dumps(serializer.loads(op["cookie"], max_age=max_age))
    raise ValueError("unknown operation %r" % kind)


results = []
for op in json.loads(sys.argv[1]):
    try:
        results.append({"ok": run(op)})
    except Exception as error:  # reported to the Rust side, which asserts on it
        results.append({"error": type(error).__name__, "message": str(error)})
print(json.dumps(results))
