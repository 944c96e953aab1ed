"""What keyroll costs a Django or Flask request, against the same site with a static key.

Each side runs in its own child process (a fresh interpreter: no state shared between the
sides), the two sides alternating, several processes each; a case's figure is the median over
processes of each process's best round. The baseline is the same site doing the same work with
the same keys held statically: Django with ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` set in
settings, Flask with ``secret_key`` and ``SECRET_KEY_FALLBACKS`` in its config. Cases:

- ``request``: a test-client GET whose view reads and updates a signed-cookie session, so
  the session cookie is verified and signed again on every request (Django's
  ``signed_cookies`` session engine; Flask's default session);
- ``signing.loads`` (Django): a fresh token, verified with the current key;
- ``SECRET_KEY read``, ``SECRET_KEY_FALLBACKS read`` (Django): ``settings.SECRET_KEY`` against a
  static setting's read (cached by Django's ``LazySettings``);
- ``DEBUG read`` (Django): another setting, which keyroll must not slow down;
- ``…, in one process``: in each keyroll process, the same case again with what keyroll adds
  installed and removed in turn, round after round: for Django the settings object's class
  (keyroll's subclass with the ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` descriptors, against
  Django's own ``LazySettings`` with the same keys set statically), for Flask the per-request
  hook (its ``app.app_context`` wrapper). The cost keyroll adds, without the few percent by which
  separate processes differ; the targets are held to these;
- under gunicorn (4 sync workers, ``--preload``), the same Django view served to a bounded
  load loop of our own (client threads, each a user whose session cookie is verified and
  signed again on every request): requests per second of each side, the sides in turn.

Prints a table, or JSON with ``--json``; ``--quick`` is a smoke run (under a minute).

    python crates/keyroll-py/bench/request_cost.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)"

# A case measured with keyroll on and off in turn in one process (`paired`).
IN_ONE_PROCESS = ", in one process"

# What each framework's figures are held against (keyroll / static): the cost keyroll adds,
# measured in one process, without the spread between processes.
TARGETS = {
    ("django", "request" + IN_ONE_PROCESS): 1.03,
    ("django", "SECRET_KEY read" + IN_ONE_PROCESS): 1.2,
    ("django", "SECRET_KEY_FALLBACKS read" + IN_ONE_PROCESS): 1.2,
    ("django", "DEBUG read" + IN_ONE_PROCESS): 1.02,
    ("flask", "request" + IN_ONE_PROCESS): 1.02,
}


def new_key() -> str:
    key = "".join(secrets.choice(ALPHABET) for _ in range(50))
    return key if not key.startswith("#") else new_key()  # a plain key file's comment


def best_per_call(call, quick: bool, rounds: int) -> float:
    """The best round's seconds per call, each round about 20 ms (2 ms when quick)."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    number = max(1, number // (20 if quick else 2))
    return min(timer.repeat(repeat=rounds, number=number)) / number


def django_child(side: str, keys: list, keyfile: str, quick: bool) -> dict:
    from bench_site import configure
    from django.conf import settings

    configure(side, keys, keyfile)
    from django.core import signing
    from django.test import Client

    client = Client()
    assert client.get("/").status_code == 200 and client.get("/").status_code == 200
    token = signing.dumps({"user": 42})
    assert signing.loads(token) == {"user": 42}
    rounds = 3 if quick else 7
    calls = {
        "request": lambda: client.get("/"),
        "signing.loads": lambda: signing.loads(token),
        "SECRET_KEY read": lambda: settings.SECRET_KEY,
        "SECRET_KEY_FALLBACKS read": lambda: settings.SECRET_KEY_FALLBACKS,
        "DEBUG read": lambda: settings.DEBUG,
    }
    cases: dict = {case: best_per_call(call, quick, rounds) for case, call in calls.items()}
    if side == "keyroll":
        switch = django_switch(settings, keys)
        for case, call in calls.items():
            cases[case + IN_ONE_PROCESS] = paired(switch, call, quick, rounds)
    return cases


def django_switch(settings, keys: list):
    """Installs keyroll (its settings class) or Django's own settings class with the same keys
    set statically, in this process: ``switch("keyroll")`` or ``switch("static")``."""
    from keyroll.django.live import NAMES

    live_class = type(settings)
    static_class = live_class.__mro__[1]  # Django's LazySettings, which keyroll subclasses
    set_class = object.__dict__["__class__"].__set__  # LazyObject shadows __class__
    base = settings._wrapped
    base.SECRET_KEY, base.SECRET_KEY_FALLBACKS = keys[0], keys[1:]

    def switch(side: str) -> None:
        for name in NAMES:
            settings.__dict__.pop(name, None)  # LazySettings' cache of a static read
        set_class(settings, live_class if side == "keyroll" else static_class)
        assert settings.SECRET_KEY == keys[0] and list(settings.SECRET_KEY_FALLBACKS) == keys[1:]

    return switch


def flask_child(side: str, keys: list, keyfile: str, quick: bool) -> dict:
    from flask import Flask, session

    app = Flask("bench")

    @app.get("/")
    def view():
        session["n"] = session.get("n", 0) + 1
        return "ok"

    if side == "keyroll":
        from keyroll.flask import KeyRoll

        KeyRoll(app, keys=f"file://{keyfile}", interval=3600)
    else:
        app.secret_key = keys[0]
        app.config["SECRET_KEY_FALLBACKS"] = list(reversed(keys[1:]))  # Flask's order: oldest first
    assert app.secret_key == keys[0]
    client = app.test_client()
    assert client.get("/").status_code == 200 and client.get("/").status_code == 200
    rounds = 3 if quick else 7
    cases: dict = {"request": best_per_call(lambda: client.get("/"), quick, rounds)}
    if side == "keyroll":
        hooked = app.__dict__["app_context"]  # KeyRoll's wrapper, an instance attribute

        def switch(side: str) -> None:
            if side == "keyroll":
                app.app_context = hooked
            else:
                app.__dict__.pop("app_context", None)  # Flask's own method again

        cases["request" + IN_ONE_PROCESS] = paired(switch, lambda: client.get("/"), quick, rounds)
    return cases


def paired(switch, call, quick: bool, rounds: int) -> dict:
    """``call``'s best seconds per call with keyroll installed (``switch("keyroll")``) and
    without it (``switch("static")``, the same keys held statically), the two in turn, each
    round about 20 ms (2 ms when quick). Leaves keyroll installed."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    number = max(1, number // (20 if quick else 2))
    best = {"keyroll": float("inf"), "static": float("inf")}
    for n in range(2 * rounds):
        for side in ("keyroll", "static") if n % 2 == 0 else ("static", "keyroll"):
            switch(side)
            best[side] = min(best[side], timer.timeit(number) / number)
    switch("keyroll")
    return best


def free_port() -> int:
    """A free port below the ephemeral range (load tests leave client ports in TIME_WAIT)."""
    import socket

    for port in range(21000 + os.getpid() % 4000, 30000):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port below 30000")


def load(port: int, seconds: float, clients: int) -> float:
    """Requests per second from ``clients`` threads, each a logged-in user whose session cookie
    is verified and signed again on every request, for ``seconds`` (a bounded loop)."""
    import http.client
    import threading
    import time

    done = [0] * clients
    failures = [0] * clients
    stop = time.monotonic() + seconds

    def client(slot: int) -> None:
        cookie = ""
        while time.monotonic() < stop:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/", headers={"Cookie": cookie} if cookie else {})
            answer = connection.getresponse()
            answer.read()
            connection.close()
            if answer.status != 200:
                failures[slot] += 1
                continue
            session = answer.getheader("Set-Cookie", "").split(";", 1)[0]
            cookie = session or cookie
            done[slot] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if sum(failures):
        raise SystemExit(f"{sum(failures)} requests failed")
    return sum(done) / (time.monotonic() - started)


def gunicorn(keys: list, keyfile: Path, quick: bool) -> dict:
    """Django under gunicorn (4 sync workers), each side in turn, the same load loop."""
    import time
    import urllib.request

    bin_dir = Path(sys.executable).parent
    seconds, rounds, clients = (2.0, 1, 4) if quick else (8.0, 3, 8)
    rates: dict = {"keyroll": [], "static": []}
    for n in range(rounds):
        for side in (("keyroll", "static") if n % 2 == 0 else ("static", "keyroll")):
            port = free_port()
            env = dict(os.environ, KEYROLL_BENCH_SIDE=side, KEYROLL_BENCH_KEYS=json.dumps(keys),
                       KEYROLL_BENCH_KEYFILE=keyfile.as_posix())
            server = subprocess.Popen(
                [str(bin_dir / "gunicorn"), "--workers", "4", "--preload", "--bind", f"127.0.0.1:{port}",
                 "--chdir", str(Path(__file__).parent), "--log-level", "warning", "bench_site:application"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                        break
                    except OSError:
                        if server.poll() is not None or time.monotonic() > deadline:
                            raise SystemExit(f"gunicorn ({side}) did not serve: {server.stderr.read()}")
                        time.sleep(0.1)
                load(port, 0.5, clients)  # warm every worker
                rates[side].append(load(port, seconds, clients))
            finally:
                server.terminate()
                server.wait(timeout=30)
    ours, static = statistics.median(rates["keyroll"]), statistics.median(rates["static"])
    return {"workers": 4, "clients": clients, "seconds": seconds, "rounds": rounds,
            "keyroll_rps": ours, "static_rps": static, "ratio": static / ours}


def child(framework: str, side: str, keys: list, keyfile: str, quick: bool) -> None:
    measure = django_child if framework == "django" else flask_child
    print(json.dumps(measure(side, keys, keyfile, quick)))


def run(quick: bool) -> dict:
    keys = [new_key() for _ in range(2)]  # the signing key and one fallback
    processes = 2 if quick else 6
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        keyfile = Path(tmp) / "keys"
        keyfile.write_text("\n".join(keys) + "\n")
        for framework in ("django", "flask"):
            samples: dict = {"keyroll": [], "static": []}
            for n in range(processes):
                # Alternate which side goes first, so neither always runs on a warmer machine.
                order = ("keyroll", "static") if n % 2 == 0 else ("static", "keyroll")
                for side in order:
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", framework, side, keyfile.as_posix(),
                         *(["--quick"] if quick else [])],
                        input=json.dumps(keys), capture_output=True, text=True, timeout=300, check=False,
                    )
                    if done.returncode != 0:
                        raise SystemExit(f"{framework} {side} child failed:\n{done.stderr}")
                    samples[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
            for case, first in samples["keyroll"][0].items():
                if isinstance(first, dict):  # both sides measured in each keyroll process
                    ours = statistics.median(s[case]["keyroll"] for s in samples["keyroll"])
                    static = statistics.median(s[case]["static"] for s in samples["keyroll"])
                else:
                    ours = statistics.median(s[case] for s in samples["keyroll"])
                    static = statistics.median(s[case] for s in samples["static"])
                results.setdefault(framework, []).append({
                    "case": case,
                    "keyroll_ns": ours * 1e9,
                    "static_ns": static * 1e9,
                    "ratio": ours / static,
                    "target": TARGETS.get((framework, case)),
                })
        served = gunicorn(keys, keyfile, quick)
    import django

    return {
        "gunicorn": served,
        "python": sys.version.split()[0],
        "django": django.get_version(),
        "flask": importlib.metadata.version("flask"),
        "processes": processes,
        "frameworks": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (under a minute)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "SIDE", "KEYFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        framework, side, keyfile = args.child
        child(framework, side, json.loads(sys.stdin.read()), keyfile, args.quick)
        return
    result = run(args.quick)
    if args.json:
        print(json.dumps(result))
        return
    print(f"keyroll against a static key, median of {result['processes']} processes per side")
    print(f"{'framework':<8} {'case':<27} {'keyroll':>11} {'static':>11} {'ratio':>7}  target")
    for framework, rows in result["frameworks"].items():
        for row in rows:
            target = f"<= {row['target']:.2f}x" if row["target"] else ""
            print(f"{framework:<8} {row['case']:<27} {row['keyroll_ns']:>8.0f} ns {row['static_ns']:>8.0f} ns "
                  f"{row['ratio']:>6.3f}x  {target}")
    g = result["gunicorn"]
    print(f"gunicorn, {g['workers']} workers, {g['clients']} clients: keyroll {g['keyroll_rps']:.0f} requests/s, "
          f"static {g['static_rps']:.0f} requests/s ({g['ratio']:.3f}x the time per request)")


if __name__ == "__main__":
    main()
