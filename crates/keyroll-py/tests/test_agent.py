"""``keyroll agent`` + ``file://``: a Python KeyRing reading the file an agent
writes from OpenBao sees every rotation, staged as for the store itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import keyroll
from conftest import OpenBao, keyroll_cli, wait_until


def test_a_keyring_reading_the_agents_file_sees_rotations(openbao: OpenBao, tmp_path: Path) -> None:
    first = openbao.put()
    out = tmp_path / "keys.json"
    agent = subprocess.Popen(
        [keyroll_cli(), "agent", "--keys", openbao.uri(), "--out", str(out), "--interval", "200ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, VAULT_TOKEN=OpenBao.TOKEN),
    )
    try:
        wait_until(out.exists, what="the agent's first write")
        assert json.loads(out.read_text())["reach"] == "shared"
        assert os.stat(out).st_mode & 0o777 == 0o600
        # Two processes' key rings on the host: both read the file, not the store.
        options = dict(interval=0.5, jitter=0.1, clock_skew_margin=0.5)
        rings = [keyroll.open(f"file://{out}", **options) for _ in range(2)]
        assert all(ring.signing_key == first for ring in rings)
        for _ in range(3):
            new = openbao.put()
            for ring in rings:
                # Known at once (the file is watched), signing after the staged delay.
                wait_until(lambda: new in ring.verification_keys, what="the new key to verify")
                wait_until(lambda: ring.signing_key == new, what="the new key to sign")
        statuses = [ring.status() for ring in rings]
        assert statuses[0]["keys"] == statuses[1]["keys"]
        assert statuses[0]["source"] == f"file://{out}"
        for ring in rings:
            ring.close()
    finally:
        agent.send_signal(signal.SIGTERM)
        stdout, stderr = agent.communicate(timeout=30)
    assert agent.returncode == 0, stderr
    assert stdout.decode().count(" wrote ") == 4, stdout
