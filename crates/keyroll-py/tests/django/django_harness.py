"""Harness for the keyroll.django tests, with real components: gunicorn, uvicorn, the keyroll CLI
(OpenBao comes from the package tests' conftest).

Every scenario runs in its own interpreter (a server, a script), so Django's
process-wide settings never leak between tests or into other test modules.
Under CI a missing component fails; elsewhere it skips with the reason.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

import conftest  # crates/keyroll-py/tests/conftest.py: OpenBao, new_key, free_ports, wait_until, missing
from conftest import missing, wait_until

HERE = Path(__file__).resolve().parent
SITE = HERE / "site"
SCRIPTS = HERE / "scripts"
REPO = HERE.parents[3]
BIN = Path(sys.executable).parent


def new_key():
    """A key for a plain key file: not starting with `#`, which that format reads as a comment."""
    key = conftest.new_key()
    return key if not key.startswith("#") else new_key()


def keyroll_cli():
    """The `keyroll` binary: $KEYROLL_CLI, the workspace's cargo build, or PATH."""
    candidates = [os.environ.get("KEYROLL_CLI")]
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    candidates += [str(Path(target) / profile / "keyroll") for profile in ("debug", "release")]
    candidates.append(shutil.which("keyroll"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing("the keyroll CLI (cargo build -p keyroll-cli, or set KEYROLL_CLI)")


def site_env(keys, options=None, sessions="db", db=None, extra=None):
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "kr_site.settings",
        "PYTHONPATH": os.pathsep.join([str(SITE), env.get("PYTHONPATH", "")]),
        "KEYROLL_TEST_KEYS": keys,
        "KEYROLL_TEST_OPTIONS": json.dumps(options or {}),
        "KEYROLL_TEST_SESSIONS": sessions,
        "PYTHONUNBUFFERED": "1",
    })
    if db:
        env["KEYROLL_TEST_DB"] = str(db)
    env.update(extra or {})
    return env


def run_python(args, env, timeout=120, check=True, input=None):
    done = subprocess.run([sys.executable, *args], env=env, cwd=SITE, capture_output=True, text=True,
                          timeout=timeout, input=input)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


class Server:
    """The test site under gunicorn (WSGI, sync workers, --preload) or uvicorn (ASGI)."""

    def __init__(self, kind, env, workers, log_path):
        self.kind, self.env, self.workers = kind, env, workers
        self.log_path = log_path
        self.log = open(log_path, "wb")
        for _ in range(5):
            self.port = conftest.free_ports(1)
            bind = f"127.0.0.1:{self.port}"
            if kind == "gunicorn":
                command = [str(BIN / "gunicorn"), "--preload", "-w", str(workers), "-b", bind,
                           "--graceful-timeout", "5", "kr_site.wsgi:application"]
            else:
                command = [str(BIN / "uvicorn"), "--workers", str(workers), "--host", "127.0.0.1",
                           "--port", str(self.port), "--no-access-log", "kr_site.asgi:application"]
            if not Path(command[0]).exists():
                missing(f"{kind} (pip install -r scripts/requirements-test.txt)")
            self.process = subprocess.Popen(command, env=env, cwd=SITE, stdout=self.log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
            try:
                wait_until(lambda: self.process.poll() is not None or self.ready(),
                           timeout=60, what=f"{kind} to answer")
            except AssertionError:
                self.stop()
                raise AssertionError(f"{kind} did not become ready:\n{self.output()}")
            if self.process.poll() is None:
                return
        raise AssertionError(f"{kind} did not start:\n{self.output()}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def ready(self):
        try:
            return requests.get(self.url("/ready"), timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def output(self):
        self.log.flush()
        return Path(self.log_path).read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# Scripted clients that keep using a Django site while its key rotates, and count what broke.

PASSWORD = "correct horse battery staple"


@dataclass
class Tally:
    requests: int = 0
    logged_out: int = 0
    links_refused: int = 0
    messages_lost: int = 0
    signed_refused: int = 0
    stale_hash: int = 0
    errors: list = field(default_factory=list)
    generations: set = field(default_factory=set)
    pids: set = field(default_factory=set)
    # (issued at, uid, token) and (issued at, signed value) kept for the after-window check.
    old_links: list = field(default_factory=list)
    old_signed: list = field(default_factory=list)
    old_cookies: list = field(default_factory=list)

    def failures(self):
        return self.logged_out + self.links_refused + self.messages_lost + self.signed_refused


class Client(threading.Thread):
    """One user: logs in once, then loops over whoami, reset links, messages and signing.dumps.

    A link or signed value is checked again while younger than `valid_for`
    seconds: its key still verifies then, whatever rotated meanwhile.
    """

    def __init__(self, base, username, tally, lock, stop, valid_for):
        super().__init__(daemon=True)
        self.base, self.username, self.tally, self.lock, self.stop = base, username, tally, lock, stop
        self.valid_for = valid_for
        self.http = requests.Session()
        self.http.headers["Connection"] = "close"  # a new connection per request: every worker serves

    def call(self, method, path, **kwargs):
        answer = self.http.request(method, self.base + path, timeout=30, **kwargs)
        with self.lock:
            self.tally.requests += 1
        return answer

    def login(self):
        answer = self.call("POST", "/login", data={"username": self.username, "password": PASSWORD})
        assert answer.status_code == 200, f"login of {self.username} failed: {answer.status_code}"

    def count(self, name, detail):
        with self.lock:
            setattr(self.tally, name, getattr(self.tally, name) + 1)
            if len(self.tally.errors) < 20:
                self.tally.errors.append(f"{self.username}: {name}: {detail}")

    def run(self):
        try:
            self.loop()
        except Exception as error:  # noqa: BLE001 - reported by the test
            with self.lock:
                self.tally.errors.append(f"{self.username}: client crashed: {error!r}")

    def loop(self):
        self.login()
        links, signed, n, pending_message = [], [], 0, None
        with self.lock:
            self.tally.old_cookies.append((time.monotonic(), self.base, self.http.cookies.copy()))
        while not self.stop.is_set():
            n += 1
            who = self.call("GET", "/whoami")
            if who.status_code != 200:
                self.count("logged_out", f"whoami {who.status_code}")
                self.login()
                links.clear()  # logging in again changes last_login: older links are void
                continue
            body = who.json()
            with self.lock:
                self.tally.generations.add(body["generation"])
                self.tally.pids.add(body["pid"])
            if not body["hash_current"]:
                # Not a failure: the key can swap between get_user() (which re-hashed the
                # session) and the view's own hash within one request. The sessions' hashes are
                # checked once the rotations are over (final_rehash_check).
                with self.lock:
                    self.tally.stale_hash += 1
            now = time.monotonic()
            token = self.call("GET", "/reset-token").json()
            links.append((now, token["uid"], token["token"]))
            value = self.call("GET", "/signed", params={"n": str(n)}).json()["value"]
            signed.append((now, value))
            for issued, uid, tok in [link for link in links if now - link[0] < self.valid_for][:-1][-2:]:
                check = self.call("GET", "/reset-check", params={"uid": uid, "token": tok})
                if check.status_code != 200:
                    self.count("links_refused", f"link {now - issued:.1f} s old refused by pid {check.json()['pid']}")
            for issued, val in [s for s in signed if now - s[0] < self.valid_for][:-1][-2:]:
                check = self.call("GET", "/unsigned", params={"value": val})
                if check.status_code != 200:
                    self.count("signed_refused", f"value {now - issued:.1f} s old refused")
            if pending_message is not None:
                shown = self.call("GET", "/messages").json()["messages"]
                if pending_message not in shown:
                    self.count("messages_lost", "message cookie not verified")
            pending_message = f"{self.username}-{n}"
            self.call("POST", "/message", data={"text": pending_message})
            links = [link for link in links if now - link[0] < self.valid_for]
            signed = [s for s in signed if now - s[0] < self.valid_for]
            with self.lock:
                if len(self.tally.old_links) < 50:
                    self.tally.old_links.append((now, self.base, token["uid"], token["token"]))
                    self.tally.old_signed.append((now, self.base, value))


def create_users(run_manage, names):
    code = (
        "from django.contrib.auth.models import User\n"
        f"for name in {names!r}:\n"
        f"    User.objects.create_user(name, password={PASSWORD!r})\n"
    )
    run_manage(["shell", "-c", code])


def drive(bases, users_per_site, rotate, rotations, period, valid_for):
    """Runs clients against every base URL while `rotate()` is called `rotations` times, `period` apart."""
    tally, lock, stop = Tally(), threading.Lock(), threading.Event()
    clients = [Client(base, f"user{i}", tally, lock, stop, valid_for)
               for base, count in zip(bases, users_per_site) for i in range(count)]
    for client in clients:
        client.start()
    time.sleep(period)
    for _ in range(rotations):
        rotate()
        time.sleep(period)
    stop.set()
    for client in clients:
        client.join(60)
    return tally, clients
