"""Django-format verify through keyroll against Django's own ``Signer.unsign``,
on the same tokens, in one run: the current key and the 16th fallback.

Both sides are timed with ``timeit``, interleaved round by round, keeping
each case's best round. Prints a table and the ratios; ``--json`` prints the
figures as JSON (what ``scripts/bench`` puts into docs/BENCHMARKS.md);
``--quick`` is a smoke run whose figures are noise.

    python crates/keyroll-py/bench/django_verify.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import timeit
from pathlib import Path

import django
from django.core import signing

import keyroll

FALLBACKS = 16
VALUE = "user:42:session-3f9a1c"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)"


def new_key() -> str:
    key = "".join(secrets.choice(ALPHABET) for _ in range(50))
    return key if not key.startswith("#") else new_key()


def run(quick: bool) -> dict:
    keys = [new_key() for _ in range(FALLBACKS + 1)]  # current first
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys"
        path.write_text("\n".join(keys) + "\n")
        ring = keyroll.open(f"file://{path}", max_fallbacks=FALLBACKS)
        try:
            assert ring.verification_keys == keys
            ours = ring.django_signer()
            theirs = signing.Signer(key=keys[0], fallback_keys=keys[1:])
            tokens = {
                "current": theirs.sign(VALUE),
                "fallback 16": signing.Signer(key=keys[FALLBACKS], fallback_keys=[]).sign(VALUE),
            }
            cases = []
            for which, token in tokens.items():
                assert ours.unsign(token) == theirs.unsign(token) == VALUE
                for side, call in (("keyroll", ours.unsign), ("django", theirs.unsign)):
                    timer = timeit.Timer("call(token)", globals={"call": call, "token": token})
                    per_call = min(timer.repeat(repeat=3, number=50)) / 50
                    number = 50 if quick else max(1, int(0.02 / per_call))
                    cases.append({"token": which, "side": side, "timer": timer, "number": number, "best": float("inf")})
            for _ in range(2 if quick else 15):
                for case in cases:
                    case["best"] = min(case["best"], case["timer"].timeit(number=case["number"]) / case["number"])
        finally:
            ring.close()
    rows = []
    for which in tokens:
        best = {c["side"]: c["best"] * 1e9 for c in cases if c["token"] == which}
        rows.append({"token": which, "keyroll_ns": best["keyroll"], "django_ns": best["django"],
                     "ratio": best["django"] / best["keyroll"]})
    return {"python": sys.version.split()[0], "django": django.get_version(), "keys": FALLBACKS + 1, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; figures are noise")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    result = run(args.quick)
    if args.json:
        print(json.dumps(result))
        return
    print(f"Django-format verify, {result['keys']} keys held (Python {result['python']}, Django {result['django']})")
    print(f"{'token of':<12} {'keyroll':>10} {'Django':>10} {'Django / keyroll':>17}")
    for row in result["rows"]:
        print(f"{row['token']:<12} {row['keyroll_ns']:>8.0f}ns {row['django_ns']:>8.0f}ns {row['ratio']:>16.1f}x")


if __name__ == "__main__":
    main()
