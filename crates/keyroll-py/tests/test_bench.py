"""The Django-verify benchmark runs and reports both tokens (not a timed
assertion: the figures are checked by scripts/bench, in release mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "django_verify.py"


def test_the_benchmark_runs_and_reports_both_tokens() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["keys"] == 17
    assert [row["token"] for row in result["rows"]] == ["current", "fallback 16"]
    for row in result["rows"]:
        assert row["keyroll_ns"] > 0 and row["django_ns"] > 0
        assert row["ratio"] == row["django_ns"] / row["keyroll_ns"]
    table = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=120)
    assert "Django / keyroll" in table.stdout, table.stderr
