"""The Django-verify benchmark runs and reports both tokens (not a timed
assertion: the figures are checked by scripts/bench, in release mode)."""

from __future__ import annotations

import json
import math
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


REQUEST_COST = Path(__file__).resolve().parents[1] / "bench" / "request_cost.py"


def test_the_request_cost_benchmark_reports_every_case_and_gunicorn() -> None:
    """Runs the quick mode (what `keyroll-bench --frameworks --quick` prints); checks what it
    reports, not how fast (the figures are scripts/bench's business, in release mode)."""
    done = subprocess.run([sys.executable, str(REQUEST_COST), "--quick", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    cases = {framework: [row["case"] for row in rows] for framework, rows in result["frameworks"].items()}
    django_cases = ["request", "signing.loads", "SECRET_KEY read", "SECRET_KEY_FALLBACKS read", "DEBUG read"]
    assert cases == {
        "django": django_cases + [case + ", in one process" for case in django_cases],
        "flask": ["request", "request, in one process"],
    }
    targets = {(framework, row["case"]): row["target"] for framework, rows in result["frameworks"].items()
               for row in rows}
    assert targets[("flask", "request, in one process")] == 1.02
    assert targets[("django", "request, in one process")] == 1.03
    assert targets[("django", "SECRET_KEY read, in one process")] == 1.2
    assert targets[("django", "request")] is None, "the targets are held to the figures in one process"
    for rows in result["frameworks"].values():
        for row in rows:
            assert row["keyroll_ns"] > 0 and row["static_ns"] > 0
            assert math.isclose(row["ratio"], row["keyroll_ns"] / row["static_ns"])
    served = result["gunicorn"]
    assert served["workers"] == 4 and served["keyroll_rps"] > 0 and served["static_rps"] > 0
