"""The Flask app the gunicorn tests serve: log in, then ask who you are.

Configured from the environment: KEYROLL_TEST_KEYS (the key source URI) and
KEYROLL_TEST_OPTIONS (JSON of keyroll.open options).
"""

import json
import os

from flask import Flask, request, session

from keyroll.flask import KeyRoll

app = Flask(__name__)
keyroll_ext = KeyRoll(app, keys=os.environ["KEYROLL_TEST_KEYS"], **json.loads(os.environ.get("KEYROLL_TEST_OPTIONS", "{}")))


@app.post("/login")
def login():
    session.permanent = True  # re-sent, signed with the current key, on every request
    session["user"] = request.args["user"]
    return "ok"


@app.get("/whoami")
def whoami():
    return session.get("user", "anonymous")


@app.get("/health")
def health():
    status = keyroll_ext.status()
    return status, 200 if status["health"] == "healthy" else 503
