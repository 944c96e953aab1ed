"""keyroll.flask: app.secret_key and SECRET_KEY_FALLBACKS follow the key ring,
in-process and under gunicorn with several workers and keys in OpenBao."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

import pytest

flask = pytest.importorskip("flask") if not os.environ.get("CI") else __import__("flask")

import keyroll  # noqa: E402
from conftest import KeyFile, OpenBao, free_ports, missing, rfc3339, venv_bin, wait_until  # noqa: E402
from keyroll.flask import KeyRoll, _apply  # noqa: E402

HERE = Path(__file__).parent


def test_keys_follow_the_ring_in_flasks_order(keyfile: KeyFile) -> None:
    v1 = keyfile.add(id="v1")
    app = flask.Flask("t")
    ext = KeyRoll(app, keys=keyfile.uri, interval=0.2)
    try:
        assert app.secret_key == v1 and app.config["SECRET_KEY_FALLBACKS"] == []
        v2 = keyfile.add(id="v2")
        v3 = keyfile.add(id="v3")
        wait_until(lambda: ext.ring.signing_key == v3, what="v3 to sign")
        with app.app_context():  # every app context (so every request) syncs
            assert app.secret_key == v3
            assert app.config["SECRET_KEY_FALLBACKS"] == [v1, v2]  # oldest first: Flask tries v2 first
        assert ext.status()["health"] == "healthy"
    finally:
        ext.close()


def _session_app(keyfile: KeyFile, **options: object) -> "tuple[flask.Flask, KeyRoll]":
    app = flask.Flask("t")

    @app.post("/login")
    def login():
        flask.session["user"] = "ada"
        return "ok"

    @app.get("/whoami")
    def whoami():
        return flask.session.get("user", "anonymous")

    return app, KeyRoll(app, keys=keyfile.uri, interval=0.2, **options)


def test_a_session_signed_with_an_old_key_survives_a_rotation(keyfile: KeyFile) -> None:
    keyfile.add(id="v1")
    app, ext = _session_app(keyfile)
    try:
        client = app.test_client()
        client.post("/login")
        new = keyfile.add(id="v2")
        wait_until(lambda: ext.ring.signing_key == new, what="v2 to sign")
        assert client.get("/whoami").text == "ada"
        assert app.secret_key == new
    finally:
        ext.close()


@pytest.mark.parametrize("revocation", ["disabled", "expired"])
def test_a_revoked_or_expired_only_key_raises_instead_of_serving_it(keyfile: KeyFile, revocation: str) -> None:
    v1 = keyfile.add(id="v1")
    app, ext = _session_app(keyfile)
    try:
        client = app.test_client()
        client.post("/login")
        cookie = client.get_cookie("session")
        assert cookie is not None and client.get("/whoami").text == "ada"
        if revocation == "disabled":
            keyfile.entries[0]["state"] = "disabled"
        else:
            keyfile.entries[0]["expires"] = rfc3339(time.time() + 1.0)
        keyfile.write()
        wait_until(lambda: ext.ring.status()["health"] == "stale", what="the ring to fail closed")
        # Every request is an error Flask reports (500), never the revoked key's session.
        app.testing = False  # as in production: Flask answers 500 rather than re-raising
        answer = client.get("/whoami")
        assert answer.status_code == 500
        with pytest.raises(keyroll.FailedClosed):
            ext.sync()
        assert app.secret_key is None and app.config["SECRET_KEY_FALLBACKS"] == []
        # A new key reopens without a restart; the revoked key's cookie stays refused.
        keyfile.entries[0].pop("expires", None)
        keyfile.entries[0]["state"] = "disabled"
        v2 = keyfile.add(id="v2")
        wait_until(lambda: ext.ring.status()["health"] == "healthy", what="the ring to reopen")
        assert client.get("/whoami").text == "anonymous"
        assert app.secret_key == v2 and v1 not in app.config["SECRET_KEY_FALLBACKS"]
    finally:
        ext.close()


def test_close_stops_refreshing_and_the_app_keeps_its_keys(keyfile: KeyFile) -> None:
    v1 = keyfile.add(id="v1")
    app, ext = _session_app(keyfile)
    client = app.test_client()
    client.post("/login")
    ext.close()
    ext.close()  # idempotent
    keyfile.add(id="v2")
    # Later requests work, with the keys the app had (as the docstring says).
    assert client.get("/whoami").text == "ada"
    assert app.secret_key == v1
    assert ext.sync() is False


def test_every_intermediate_state_verifies_old_and_new() -> None:
    """Records the config after each write of one swap: each state's keys
    verify a cookie of the old pair and one of the new pair."""
    writes: List[tuple] = []

    class Recording(dict):
        def __setitem__(self, name, value):
            super().__setitem__(name, value)
            writes.append((self.get("SECRET_KEY"), list(self.get("SECRET_KEY_FALLBACKS") or [])))

    app = flask.Flask("t")
    app.config = Recording(SECRET_KEY="k1", SECRET_KEY_FALLBACKS=["k0"])
    _apply(app, "k2", ["k1"])
    assert len(writes) == 3
    for key, fallbacks in writes:
        keys = {key, *fallbacks}
        assert {"k1", "k2"} <= keys or (key == "k1" and "k0" in keys), writes
        assert key in ("k1", "k2")
    assert writes[-1] == ("k2", ["k1"])


def test_without_a_source_it_says_what_to_set() -> None:
    with pytest.raises(keyroll.KeyrollError, match="KEYROLL_KEYS"):
        KeyRoll(flask.Flask("t"))


# ---- gunicorn, 4 sync workers, OpenBao -----------------------------------


class Server:
    def __init__(self, uri: str, options: Dict, preload: bool):
        gunicorn = venv_bin("gunicorn")
        if gunicorn is None:
            missing("gunicorn")
        self.port = free_ports(1)
        env = dict(
            os.environ,
            KEYROLL_TEST_KEYS=uri,
            KEYROLL_TEST_OPTIONS=json.dumps(options),
            PYTHONPATH=str(HERE),
        )
        args = [sys.executable, "-m", "gunicorn", "--workers", "4", "--worker-class", "sync",
                "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--timeout", "60"]
        if preload:
            args.append("--preload")
        self.log = open(HERE / f".gunicorn-{self.port}.log", "w+b")  # noqa: SIM115
        self.process = subprocess.Popen(args + ["flask_app:app"], env=env, cwd=HERE, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._up, timeout=30, what="gunicorn to answer")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            self.log.seek(0)
            raise AssertionError("gunicorn exited: " + self.log.read().decode(errors="replace")[-3000:])
        try:
            return request(self.port, "GET", "/health", None)[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()
        os.unlink(self.log.name)


def request(port: int, method: str, path: str, cookie: Optional[str]):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    if cookie:
        req.add_header("Cookie", f"session={cookie}")
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            status, body, headers = answer.status, answer.read().decode(), answer.headers
    except urllib.error.HTTPError as error:
        status, body, headers = error.code, error.read().decode(), error.headers
    new_cookie = None
    for header in headers.get_all("Set-Cookie") or []:
        if header.startswith("session="):
            new_cookie = header.split(";", 1)[0][len("session="):]
    return status, body, new_cookie


def run_rotation(openbao: OpenBao, options: Dict, rotations: int, preload: bool) -> Dict[str, int]:
    """Clients log in and keep asking who they are while the key is rotated
    ``rotations`` times in OpenBao; returns the counts."""
    openbao.put()
    server = Server(openbao.uri(), options, preload)
    counts = {"requests": 0, "lost": 0, "errors": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def client(name: str) -> None:
        status, _, cookie = request(server.port, "POST", f"/login?user={name}", None)
        assert status == 200 and cookie
        while not stop.is_set():
            status, body, new_cookie = request(server.port, "GET", "/whoami", cookie)
            with lock:
                counts["requests"] += 1
                if status != 200:
                    counts["errors"] += 1
                elif body != name:
                    counts["lost"] += 1
            if body != name:  # logged out: log in again and go on counting
                _, _, new_cookie = request(server.port, "POST", f"/login?user={name}", None)
            cookie = new_cookie or cookie

    threads = [threading.Thread(target=client, args=(f"user{i}",)) for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        period = options["interval"] * 2
        for _ in range(rotations):
            time.sleep(period)  # the pace of rotation, not a wait for a result
            openbao.put()
        time.sleep(period)
        # The workers did move: the last version is known (and, staged, soon signs).
        last = str(rotations + 1)

        def knows_last() -> bool:
            status, body, _ = request(server.port, "GET", "/health", None)
            return status == 200 and any(k["id"] == last for k in json.loads(body)["keys"])

        wait_until(knows_last, what=f"a worker to know version {last}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.stop()
    return counts


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_gunicorn_workers_lose_no_session_over_20_rotations(openbao: OpenBao, preload: bool) -> None:
    # Staged: a new version signs 0.5 + 0.1 + 2 s after the store created it, time for every
    # worker to have polled even on a loaded machine (rotations come every second, so several
    # versions are pending at once).
    options = {"interval": 0.5, "jitter": 0.1, "clock_skew_margin": 2.0, "max_fallbacks": 8}
    counts = run_rotation(openbao, options, rotations=20, preload=preload)
    print("staged:", counts)
    assert counts["requests"] > 200, counts
    assert counts["lost"] == 0 and counts["errors"] == 0, counts


def test_control_without_staged_activation_loses_sessions(openbao: OpenBao) -> None:
    options = {"interval": 0.5, "jitter": 0.1, "activation_delay": 0, "max_fallbacks": 8}
    counts = run_rotation(openbao, options, rotations=20, preload=False)
    print("control:", counts)
    assert counts["lost"] > 0, counts
