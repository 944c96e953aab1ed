"""Django's own test suites for signing, signed cookies, sessions, auth and messages, from the
Django 5.2.19 source distribution, with keyroll.django installed: the app never fights an
override (override_settings, modify_settings) the suites put in force."""

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import django

from django_harness import HERE, missing, new_key

VERSION = "5.2.19"
SUITES = ["signing", "signed_cookies_tests", "sessions_tests", "auth_tests", "messages_tests"]


def django_source():
    """The sdist's tests/ directory, downloaded once into a git-ignored cache in the venv."""
    cache = Path(os.environ.get("KEYROLL_DJANGO_SRC_CACHE", Path(sys.prefix) / "keyroll-cache"))
    tests = cache / f"django-{VERSION}" / "tests"
    if (tests / "runtests.py").exists():
        return tests
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"django-{VERSION}.tar.gz"
    if not archive.exists():
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
                               "--no-binary", ":all:", "--no-deps", f"Django=={VERSION}", "-d", str(cache)],
                              capture_output=True, text=True)
        if done.returncode != 0 or not archive.exists():
            missing(f"the Django {VERSION} source distribution (pip download failed: {done.stderr.strip()})")
    with tarfile.open(archive) as sdist:
        sdist.extractall(cache, filter="data")
    return tests


def test_djangos_own_suites_pass_with_keyroll_installed(tmp_path):
    assert django.get_version() == VERSION
    tests = django_source()
    keys = tmp_path / "keys"
    keys.write_text(new_key() + "\n" + new_key() + "\n")
    env = dict(os.environ, KEYROLL_SUITE_KEYS=str(keys), PYTHONPATH=str(HERE))
    done = subprocess.run([sys.executable, "runtests.py", "--settings=suite_settings", "--parallel=2", "-v", "2",
                           *SUITES], cwd=tests, env=env, capture_output=True, text=True, timeout=400)
    output = done.stdout + done.stderr
    tail = "\n".join(output.splitlines()[-40:])
    assert done.returncode == 0, tail
    ran = re.search(r"^Ran (\d+) tests", output, re.M)
    print(ran.group(0), re.search(r"^OK.*$", output, re.M).group(0))
    assert int(ran.group(1)) > 1000
    # The app was installed (its label among the apps synchronised for the run).
    assert re.search(r"Synchronize unmigrated apps: .*\bkeyroll\b", output), tail
