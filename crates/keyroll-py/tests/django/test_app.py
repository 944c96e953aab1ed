"""keyroll.django in one process: the settings race, fork, overrides, bad input, checks,
management commands. Each scenario runs in its own interpreter (scripts/)."""

import importlib.util
import json
import subprocess
import sys
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_harness import SCRIPTS, missing, new_key, run_python, site_env
from keyroll.django import conf
from keyroll.django.live import TRANSITION_GRACE


def script_env():
    return site_env("unused", extra={"PYTHONPATH": str(SCRIPTS)})


def last_json(done):
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the KEYROLL setting --------------------------------------------------------------------

def test_every_open_option_in_upper_case():
    config = conf.parse({"KEYS": " vault:///secret/app ", "INTERVAL": 30, "JITTER": 3, "CLOCK_SKEW_MARGIN": 30.5,
                         "FALLBACK_WINDOW": 86400, "MAX_FALLBACKS": 4, "FAIL_CLOSED_AFTER": 3600,
                         "ACTIVATION_DELAY": 0})
    assert config.keys == "vault:///secret/app"
    assert config.options == {"interval": 30, "jitter": 3, "clock_skew_margin": 30.5, "fallback_window": 86400,
                              "max_fallbacks": 4, "fail_closed_after": 3600, "activation_delay": 0}
    assert config.enabled


@pytest.mark.parametrize("value, message", [
    ({"KEYS": "file:///k", "INTERVALL": 1}, "KEYROLL has an unknown key 'INTERVALL'. Did you mean 'INTERVAL'?"),
    ({"KEYS": "file:///k", "jitter": 1}, "KEYROLL has an unknown key 'jitter'. Did you mean 'JITTER'?"),
    ({"KEY": "file:///k"}, "KEYROLL has an unknown key 'KEY'. Did you mean 'KEYS'?"),
    ({}, "KEYROLL['KEYS'] must be a key source URI"),
    (None, "keyroll.django is in INSTALLED_APPS but the KEYROLL setting is missing"),
    ("vault:///secret/app", "KEYROLL must be a dict"),
    ({"KEYS": "file:///k", "INTERVAL": "30"}, "KEYROLL['INTERVAL'] must be a number of seconds"),
    ({"KEYS": "file:///k", "INTERVAL": True}, "KEYROLL['INTERVAL'] must be a number of seconds"),
    ({"KEYS": "file:///k", "MAX_FALLBACKS": 2.5}, "KEYROLL['MAX_FALLBACKS'] must be an int"),
    ({"KEYS": "file:///k", "JITTER": -1}, "KEYROLL['JITTER'] must not be negative"),
    ({"KEYS": "file:///k", "ENABLED": "no"}, "KEYROLL['ENABLED'] must be True or False"),
])
def test_a_bad_keyroll_setting_is_a_clear_error(value, message):
    with pytest.raises(ImproperlyConfigured) as error:
        conf.parse(value)
    assert message in str(error.value)


def test_a_typo_stops_manage_py_with_the_name(tmp_path):
    keys = tmp_path / "keys"
    secret = new_key()
    keys.write_text(secret + "\n")
    env = site_env(f"file://{keys}", {"INTERVALL": 1})
    done = run_python(["manage.py", "check"], env, check=False)
    assert done.returncode != 0
    assert "KEYROLL has an unknown key 'INTERVALL'. Did you mean 'INTERVAL'?" in done.stderr
    assert secret not in done.stdout + done.stderr


# --- the per-generation value ---------------------------------------------------------------

def test_a_key_swap_grows_the_fallbacks_first_and_shrinks_them_later(tmp_path):
    """Through the real settings: a reader may take the key from one generation and the
    fallbacks from the next (Signer.__init__ reads the key first): during the grace it still
    verifies what the new key signs; a key the new generation dropped is never added back;
    afterwards the fallbacks are the ring's."""
    done = run_python([str(SCRIPTS / "transition.py"), str(tmp_path / "keys")], script_env())
    result = last_json(done)
    assert result["before"] == {"key": "a", "fallbacks": ["old"]}, result
    # b signs, a falls back, old left the file (dropped at once): grown with the new key.
    assert result["during"] == {"key": "b", "fallbacks": ["a", "b"]}, result
    assert result["mixed_verifies"] == {"a": True, "b": True, "old": False}, result
    assert result["after"] == {"key": "b", "fallbacks": ["a"]}, result
    # A generation that does not move the signing key starts no transition.
    assert result["same_key"] == {"key": "b", "fallbacks": ["c", "a"]}, result
    assert result["same_object"] is True  # one str and one list per generation, as Django's own
    assert TRANSITION_GRACE == 5.0  # docs/PYTHON.md says so


def test_a_role_moment_changes_the_settings_without_a_refresh(tmp_path):
    """A staged key activates and the old key's fallback window ends at the store's times,
    with no poll in between (the refresher wakes at each moment; a read checks the moment
    itself, in case the refresher is late): no read that started after a moment shows the
    roles before it, none that ended before it the roles after it."""
    old, new = new_key(), new_key()
    done = run_python([str(SCRIPTS / "role_moments.py"), str(tmp_path / "keys"), old, new], script_env())
    result = last_json(done)
    print(json.dumps(result))
    assert result["wrong_reads"] == 0, result
    # The loop reads until half a second past the end of the window, reading all the while.
    assert result["phases"]["activated"] > 0 and result["phases"]["expired"] > 0, result
    assert old not in done.stdout + done.stderr and new not in done.stdout + done.stderr


# --- one process ----------------------------------------------------------------------------

def test_settings_race_no_stale_read_under_thread_stress():
    # The timeout only guards against a hang (the swapper waits for the readers): generous.
    done = run_python([str(SCRIPTS / "race.py"), "2000", "6", "2000"], script_env(), timeout=900)
    result = last_json(done)
    print(json.dumps(result))
    ours, control = result["keyroll"], result["control"]
    # Counted, not timed: every one of the 2,000 swaps was read at least MIN_READS times by
    # reads that started after it completed (the swapper waits for them), however loaded
    # the machine. What a read costs is the benchmark's business (scripts/bench).
    assert ours["swaps"] == 2000 and ours["min_reads_per_swap"] >= 4
    assert ours["stale_key"] == 0 and ours["stale_fallbacks"] == 0 and ours["signer_failures"] == 0
    # Django's own assignment with a read inside its window (deterministic): the key
    # stays stale after the assignment returns, and the same detector counts it.
    assert control["stale_after_last_swap"] is True
    assert control["stale_key"] > 0


def test_a_worker_forked_after_ready_refreshes_on_its_own(tmp_path):
    old, new = new_key(), new_key()
    done = run_python([str(SCRIPTS / "fork.py"), str(tmp_path / "keys"), old, new], script_env(), timeout=60)
    result = last_json(done)
    assert result["child_exit"] == 0, result


def test_an_override_in_force_always_wins(tmp_path):
    done = run_python([str(SCRIPTS / "overrides.py"), str(tmp_path / "keys"), new_key(), new_key()],
                      script_env())
    result = last_json(done)
    assert result == {name: True for name in result}, result
    assert len(result) == 11


def test_a_weak_key_published_at_run_time_is_refused_and_never_shown(tmp_path):
    good, weak = new_key(), "weakweakweakweak"
    done = run_python([str(SCRIPTS / "weak_at_runtime.py"), str(tmp_path / "keys"), good, weak], script_env())
    result = last_json(done)
    assert result["health"] == "degraded", result
    assert result["last_error"] and "weak" in result["last_error"].lower(), result
    assert result["still_good"] is True
    assert any(message.startswith("keyroll.W002") for message in result["checks"]), result["checks"]
    assert result["weak_key_leaked"] is False and weak not in done.stdout + done.stderr
    assert result["closed"] is True
    assert result["after_close"].startswith("ImproperlyConfigured: keyroll.django: "), result["after_close"]
    assert result["status_after_close"] == "closed"


def test_an_unknown_scheme_is_a_clear_error_not_a_crash():
    done = run_python([str(SCRIPTS / "unreachable.py"), "nope://x"], script_env(), input="stop\n")
    first = json.loads(done.stdout.splitlines()[0])
    assert "nope" in first["read"] and first["read"].startswith("keyroll.django could not load the keys")
    assert first["status"]["health"] == "unavailable"
    assert any(message.startswith("keyroll.E001") for message in first["checks"])
    assert first["ready"] == 503
    assert "cannot load the keys of KEYROLL['KEYS']" in first["log"]


def test_a_source_failing_at_start_loads_once_it_answers(tmp_path):
    """The key file does not exist yet when the app starts (a store not answering yet)."""
    keys = tmp_path / "keys"
    process = subprocess.Popen([sys.executable, str(SCRIPTS / "unreachable.py"), f"file://{keys}"],
                               env=script_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=SCRIPTS)
    try:
        first = json.loads(process.stdout.readline())
        assert first["read"].startswith("keyroll.django could not load the keys of KEYROLL['KEYS']: "), first
        assert first["ready"] == 503 and first["status"]["last_error"]
        assert any(message.startswith("keyroll.E001") for message in first["checks"])
        key = new_key()
        keys.write_text(key + "\n")
        process.stdin.write("go\n")
        process.stdin.flush()
        second = json.loads(process.stdout.readline())
        assert second == {"read": "key", "health": "healthy", "ready": 200}, second
        assert key not in json.dumps([first, second])
    finally:
        process.kill()
        process.wait()


# --- manage.py ------------------------------------------------------------------------------

def test_manage_py_check_status_and_rotate(tmp_path, openbao):
    openbao.put(new_key(), path="site")
    # No keyroll CLI anywhere: the package rotates with its own Rust code.
    env = site_env(openbao.uri("secret/site"), {"INTERVAL": 0.5, "ACTIVATION_DELAY": 0},
                   extra={"KEYROLL_CLI": "/nonexistent/keyroll"})
    check = run_python(["manage.py", "check"], env)
    assert "keyroll.W001" in check.stderr  # staging off with a store several hosts share
    status = run_python(["manage.py", "keyroll", "status", "--json"], env)
    assert json.loads(status.stdout)["health"] == "healthy"
    rotate = run_python(["manage.py", "keyroll", "rotate"], env)
    published, serving = rotate.stdout.splitlines()
    assert published.startswith("published new key version 2 (k-") and serving == "it signs now", rotate.stdout
    text = run_python(["manage.py", "keyroll", "status"], env).stdout
    assert "health: healthy" in text and "key 2: current" in text, text
    weak = run_python(["manage.py", "keyroll", "rotate", "--chars", "5"], env, check=False)
    assert weak.returncode == 1 and "Traceback" not in weak.stderr, weak.stderr
    assert "CommandError: keyroll rotate failed: the generated key would be weak" in weak.stderr, weak.stderr
    assert "nothing was published" in weak.stderr
    assert "key 2: current" in run_python(["manage.py", "keyroll", "status"], env).stdout


def test_what_keeps_an_old_key_and_the_fix(tmp_path):
    """The stale holders docs/PYTHON.md lists behave as it says."""
    old, new = new_key(), new_key()
    result = last_json(run_python([str(SCRIPTS / "stale_holders.py"), str(tmp_path / "keys"), old, new],
                                  script_env()))
    assert result == {
        "rotated": True,
        "at_import_signs_with_old": True,
        "at_import_cannot_verify_new": True,
        "per_call_signs_with_new": True,
        "per_call_verifies_old": True,
        "copied_is_old": True,
        "reused_cookie_signer_first": True,
        "reused_cookie_signer_second": False,
        "fresh_cookie_signer": True,
    }


def test_fail_closed_after_refuses_the_key_until_the_store_confirms_it(tmp_path):
    key = new_key()
    result = last_json(run_python([str(SCRIPTS / "fail_closed.py"), str(tmp_path / "keys"), key], script_env()))
    assert result["before"] == "key" and result["reopened"] == "key", result
    assert result["closed"].startswith("keyroll.django: the keyring has failed closed"), result
    assert any(message.startswith("keyroll.E002") for message in result["checks"]), result["checks"]
    assert key not in json.dumps(result)


DOORS_CLOSED = {
    "SECRET_KEY": "ImproperlyConfigured", "SECRET_KEY_FALLBACKS": "ImproperlyConfigured",
    "signing.loads": "ImproperlyConfigured", "signing.dumps": "ImproperlyConfigured",
    "ring.signing_key": "FailedClosed", "ring.verification_keys": "FailedClosed", "ring.snapshot": "FailedClosed",
    "native.sign": "FailedClosed", "native.unsign": "FailedClosed",
    "django_signer.sign": "FailedClosed", "django_signer.unsign": "FailedClosed",
    "ready": 503, "checks": ["keyroll.E002"],
}


@pytest.mark.parametrize("mode", ["disabled", "expired"])
def test_a_revoked_or_expired_only_key_closes_every_door_until_a_new_key(tmp_path, mode):
    key, new = new_key(), new_key()
    done = run_python([str(SCRIPTS / "revoked.py"), str(tmp_path / "keys"), mode, key, new], script_env())
    result = last_json(done)
    opened = {name: "ok" for name in DOORS_CLOSED} | {"ready": 200, "checks": []}
    assert result["before"] == opened, result["before"]
    assert result["closed"] == DOORS_CLOSED, result["closed"]
    assert result["message"].startswith("keyroll.django: the keyring has failed closed"), result["message"]
    assert result["failed_closed_type"] is True
    assert result["status"]["health"] == "stale" and "revoked" in result["status"]["last_error"], result
    # Without a restart: the new key serves, the revoked key's tokens stay refused.
    assert result["reopened"] == opened | {"old token": "BadSignature", "new key": True}, result["reopened"]
    assert key not in done.stdout + done.stderr and new not in done.stdout + done.stderr


def test_a_worker_forked_during_an_outage_fails_closed_with_its_parent(tmp_path):
    key = new_key()
    result = last_json(run_python([str(SCRIPTS / "fork_outage.py"), str(tmp_path / "keys"), key], script_env()))
    assert result["at_fork"]["read"] == "key", result
    closed = "keyroll.django: the keyring has failed closed"
    assert result["parent"]["health"] == "stale" and result["parent"]["read"].startswith(closed), result
    assert result["child"]["at_fork"]["read"] == "key", result
    assert result["child"]["later"]["health"] == "stale", result
    assert result["child"]["later"]["read"].startswith(closed), result


def test_w001_asks_the_key_ring_whether_the_store_is_shared(tmp_path):
    """The agent's file declares "reach": "shared": staging off there is W001, as for Vault;
    a local key file is not."""
    shared, local = tmp_path / "agent.json", tmp_path / "local.json"
    shared.write_text(json.dumps({"reach": "shared", "keys": [{"id": "v1", "key": new_key()}]}))
    local.write_text(json.dumps({"keys": [{"id": "v1", "key": new_key()}]}))
    off = {"ACTIVATION_DELAY": 0}
    assert "keyroll.W001" in run_python(["manage.py", "check"], site_env(f"file://{shared}", off)).stderr
    assert "keyroll.W001" not in run_python(["manage.py", "check"], site_env(f"file://{shared}")).stderr
    assert "keyroll.W001" not in run_python(["manage.py", "check"], site_env(f"file://{local}", off)).stderr


def test_status_runs_when_the_store_is_down_and_says_why(tmp_path):
    env = site_env(f"file://{tmp_path / 'missing'}")
    done = run_python(["manage.py", "keyroll", "status"], env, check=False)
    assert done.returncode == 1, done.stderr
    assert "health: unavailable" in done.stdout and "last error: " in done.stdout, done.stdout
    assert "SystemCheckError" not in done.stderr and "keys not healthy: unavailable" in done.stderr


@pytest.mark.parametrize("keys, hint", [
    ("nope://x", "Fix KEYROLL['KEYS']"),
    ("missing", "until the store answers"),
    ("weak", "publish a strong key"),
])
def test_each_e001_hint_fits_its_cause(tmp_path, keys, hint):
    if keys == "missing":
        keys = f"file://{tmp_path / 'missing'}"
    elif keys == "weak":
        (tmp_path / "weak").write_text("short\n")
        keys = f"file://{tmp_path / 'weak'}"
    done = run_python(["manage.py", "check"], site_env(keys), check=False)
    assert "keyroll.E001" in done.stderr and hint in done.stderr, done.stderr
    others = [h for h in ("Fix KEYROLL['KEYS']", "until the store answers", "publish a strong key") if h != hint]
    assert not any(other in done.stderr for other in others), done.stderr


def test_check_warns_about_a_key_weaker_than_djangos_standard(tmp_path):
    keys = tmp_path / "keys"
    short = new_key()[:40]  # strong enough for keyroll (32 bytes), short of Django's 50 characters
    keys.write_text(short + "\n")
    done = run_python(["manage.py", "check"], site_env(f"file://{keys}"))
    assert "keyroll.W003" in done.stderr and "the signing key is weaker than Django's standard" in done.stderr
    assert short not in done.stdout + done.stderr


def test_pytest_djangos_settings_fixture_wins(tmp_path):
    if importlib.util.find_spec("pytest_django") is None:
        missing("pytest-django")
    keys = tmp_path / "keys"
    keys.write_text(new_key() + "\n")
    done = run_python(["-m", "pytest", "-q", "-p", "pytest_django", "--ds", "kr_site.settings", "-p", "no:cacheprovider",
                       "--rootdir", str(tmp_path), str(SCRIPTS / "pytest_django_fixture.py")],
                      site_env(f"file://{keys}"), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_enabled_false_leaves_django_alone(tmp_path):
    env = site_env(f"file://{tmp_path / 'never-read'}", {"ENABLED": False})
    shell = run_python(["manage.py", "shell", "--no-imports", "-c",
                        "from django.conf import settings; print(type(settings).__name__)"], env)
    assert shell.stdout.strip().splitlines()[-1] == "LazySettings"
    status = run_python(["manage.py", "keyroll", "status"], env, check=False)
    assert status.returncode == 1 and "keyroll.django is disabled" in status.stderr
