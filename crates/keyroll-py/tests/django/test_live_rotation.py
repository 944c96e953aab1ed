"""Django 5.2 under gunicorn (4 sync workers, --preload) and uvicorn (ASGI), keys from a real
OpenBao, rotated 20 times while scripted clients keep logging in, resetting passwords,
reading messages and unsigning values; the same site rotating its keys itself (ROTATE_EVERY);
then the control without staged activation."""

import json
import subprocess
import time
import urllib.request
from datetime import datetime

import requests

from django_harness import Server, create_users, drive, keyroll_cli, new_key, run_python, site_env, wait_until

# Short figures so 20 rotations fit in a CI run: a new key verifies everywhere within
# INTERVAL + JITTER and signs CLOCK_SKEW_MARGIN later (1.6 s after the store made it).
STAGED = {"INTERVAL": 0.5, "JITTER": 0.1, "CLOCK_SKEW_MARGIN": 1, "FALLBACK_WINDOW": 6, "MAX_FALLBACKS": 8}
PERIOD = 2.0  # seconds between rotations
VALID_FOR = 4.0  # a token this young was signed by a key that verifies for FALLBACK_WINDOW more
ROTATIONS = 20

SESSION_HASHES = """
import json, sys
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from importlib import import_module
store = import_module(settings.SESSION_ENGINE).SessionStore
result = {"current": 0, "other": 0, "empty": 0}
for key in json.loads(sys.stdin.read()):
    session = store(session_key=key)
    if SESSION_KEY not in session:
        result["empty"] += 1
        continue
    user = get_user_model().objects.get(pk=session[SESSION_KEY])
    result["current" if session[HASH_SESSION_KEY] == user.get_session_auth_hash() else "other"] += 1
print(json.dumps(result))
"""


class Site:
    def __init__(self, tmp, name, server, keys, options, sessions, workers, users):
        self.name, self.users = name, users
        self.env = site_env(keys, options, sessions, db=tmp / f"{name}.sqlite3")
        self.manage(["migrate", "-v0"])
        create_users(self.manage, [f"user{i}" for i in range(users)])
        self.server = Server(server, self.env, workers, tmp / f"{name}.log")

    def manage(self, args, **kwargs):
        return run_python(["manage.py", *args], self.env, **kwargs)

    def session_hashes(self, session_keys):
        done = self.manage(["shell", "--no-imports", "-c", SESSION_HASHES], input=json.dumps(session_keys))
        assert done.stdout.strip(), done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


def settle():
    """Lets the last published key become current everywhere (activation 1.6 s after publication)."""
    time.sleep(STAGED["INTERVAL"] + STAGED["JITTER"] + STAGED["CLOCK_SKEW_MARGIN"] + 1.0)


def check_after_window(tally):
    """Tokens older than the fallback window (plus the rotation that superseded their key) are refused."""
    limit = PERIOD + STAGED["FALLBACK_WINDOW"] + 3.0
    now = time.monotonic()
    old_links = [link for link in tally.old_links if now - link[0] > limit]
    old_signed = [value for value in tally.old_signed if now - value[0] > limit]
    assert old_links and old_signed, "the run kept no token old enough to test expiry"
    for _, base, uid, token in old_links:
        assert requests.get(base + "/reset-check", params={"uid": uid, "token": token}, timeout=30).status_code == 403
    for _, base, value in old_signed:
        assert requests.get(base + "/unsigned", params={"value": value}, timeout=30).status_code == 403
    # The session cookies of the first login: a signed-cookie session made with a retired key
    # is refused; a database session was cycled (re-hashed) long ago.
    old_sessions = [cookies for issued, _, cookies in tally.old_cookies if now - issued > limit]
    for issued, base, cookies in tally.old_cookies:
        if now - issued > limit:
            assert requests.get(base + "/whoami", cookies=cookies, timeout=30).status_code == 401
    return len(old_links), len(old_signed), len(old_sessions)


def assert_clean(tally, sites, label):
    print(f"{label}: {tally.requests} requests, {len(tally.generations)} generations seen, "
          f"{len(tally.pids)} worker processes, failures {tally.failures()}, stale-hash answers {tally.stale_hash}")
    assert not tally.errors, "\n".join(tally.errors)
    assert tally.failures() == 0
    assert len(tally.generations) >= ROTATIONS, tally.generations
    assert len(tally.pids) >= sum(s.server.workers for s in sites)


def final_rehash_check(sites, tally_clients):
    for site in sites:
        keys = []
        for client in [c for c in tally_clients if c.base == site.server.url("")]:
            assert client.http.get(client.base + "/whoami", timeout=30).status_code == 200
            keys.append(client.http.cookies.get("sessionid"))
        hashes = site.session_hashes(keys)
        print(f"{site.name}: sessions re-hashed to the current key: {hashes}")
        assert hashes == {"current": len(keys), "other": 0, "empty": 0}


def staged_run(sites, openbao, label):
    """Rotates the key ROTATIONS times in OpenBao while clients use `sites`; then checks the result."""
    tally, clients = drive([s.server.url("") for s in sites], [s.users for s in sites],
                           lambda: openbao.put(new_key(), path="site"), ROTATIONS, PERIOD, VALID_FOR)
    settle()
    assert_clean(tally, sites, label)
    final_rehash_check(sites, clients)
    print("after the window: refused %d old links, %d old signed values, %d old sessions" % check_after_window(tally))


def test_staged_rotation_under_gunicorn_and_uvicorn_from_openbao(tmp_path, openbao):
    openbao.put(new_key(), path="site")
    keys = openbao.uri("secret/site")
    sites = []
    try:
        sites.append(Site(tmp_path, "wsgi", "gunicorn", keys, STAGED, "db", 4, 6))
        sites.append(Site(tmp_path, "asgi", "uvicorn", keys, STAGED, "signed_cookies", 2, 4))
        staged_run(sites, openbao, "staged, OpenBao")
    finally:
        for site in sites:
            site.server.stop()


# Automatic rotation: a key every 2.5 s, longer than the activation delay (1.6 s).
ROTATE_EVERY = 2.5
PERIODS = 12


def vault_versions(openbao, path):
    """The creation times (seconds since the epoch) of every version of ``secret/path``, oldest first."""
    request = urllib.request.Request(f"{openbao.address}/v1/secret/metadata/{path}",
                                     headers={"X-Vault-Token": openbao.TOKEN})
    with urllib.request.urlopen(request, timeout=10) as answer:
        versions = json.load(answer)["data"]["versions"]
    created = [versions[number]["created_time"] for number in sorted(versions, key=int)]
    # RFC 3339 with nanoseconds: keep microseconds for fromisoformat.
    return [datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp() for text in created]


def test_django_rotates_its_own_keys_under_gunicorn(tmp_path, openbao):
    """KEYROLL["ROTATE_EVERY"] and nothing else writing the store: four gunicorn workers (forked
    from a preloaded master) each may publish the next key once the newest is a period old, and
    OpenBao's check-and-set lets exactly one of them per period. Users stay logged in."""
    openbao.put(new_key(), path="site")
    # KV v2 keeps 10 versions by default: keep them all for counting.
    request = urllib.request.Request(f"{openbao.address}/v1/secret/metadata/site", method="POST",
                                     data=json.dumps({"max_versions": 100}).encode(),
                                     headers={"X-Vault-Token": openbao.TOKEN, "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()
    options = {**STAGED, "ROTATE_EVERY": ROTATE_EVERY}
    site = Site(tmp_path, "auto", "gunicorn", openbao.uri("secret/site"), options, "db", 4, 6)
    try:
        # No final re-hash check here: the rotation never stops, so the key a shell process
        # reads can differ from the one the workers re-hashed the sessions with a moment before.
        tally, _ = drive([site.server.url("")], [site.users], lambda: None, PERIODS, ROTATE_EVERY, VALID_FOR)
    finally:
        site.server.stop()
    created = vault_versions(openbao, "site")
    gaps = [round(newer - older, 3) for older, newer in zip(created, created[1:])]
    print(f"automatic: {len(created) - 1} rotations, gaps {gaps}; {tally.requests} requests, "
          f"{len(tally.generations)} generations seen, {len(tally.pids)} workers, failures {tally.failures()}")
    assert not tally.errors, "\n".join(tally.errors)
    assert tally.failures() == 0, "no user logged out, no link or value refused"
    assert len(created) - 1 >= 10, f"at least 10 automatic rotations, not {len(created) - 1}"
    assert all(gap >= ROTATE_EVERY for gap in gaps), f"two versions within one period: {gaps}"
    assert len(tally.pids) >= 4


def test_staged_rotation_through_keyroll_agent_and_file(tmp_path, openbao):
    cli = keyroll_cli()
    openbao.put(new_key(), path="site")
    out = tmp_path / "keys.json"
    agent_log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([cli, "agent", "--keys", openbao.uri("secret/site"), "--out", str(out), "--interval", "1s"],
                             env=site_env("unused"), stdout=agent_log, stderr=subprocess.STDOUT)
    sites = []
    try:
        wait_until(out.exists, what="the agent's key file")
        # The agent's file says its keys come from a shared store, so readers stage activation
        # by themselves; the margin also covers the agent's own poll interval (1 s).
        options = {**STAGED, "CLOCK_SKEW_MARGIN": 2}
        sites.append(Site(tmp_path, "agent", "gunicorn", f"file://{out}", options, "signed_cookies", 4, 6))
        staged_run(sites, openbao, "staged, keyroll agent + file://")
    finally:
        for site in sites:
            site.server.stop()
        agent.terminate()
        assert agent.wait(10) == 0, "the agent did not exit cleanly on SIGTERM"
        agent_log.close()


def test_control_without_staged_activation_logs_users_out(tmp_path, openbao):
    """ACTIVATION_DELAY 0 with a shared store: the first worker to poll a new key signs with it
    while the others cannot verify it yet. The failures staging prevents, counted."""
    openbao.put(new_key(), path="site")
    control = {"INTERVAL": 2, "JITTER": 1.5, "CLOCK_SKEW_MARGIN": 0, "ACTIVATION_DELAY": 0,
               "FALLBACK_WINDOW": 30, "MAX_FALLBACKS": 8}
    site = Site(tmp_path, "control", "gunicorn", openbao.uri("secret/site"), control, "db", 4, 6)
    try:
        tally, _ = drive([site.server.url("")], [site.users], lambda: openbao.put(new_key(), path="site"), 5, 3.0,
                         VALID_FOR)
    finally:
        site.server.stop()
    print(f"control: {tally.requests} requests, logged out {tally.logged_out}, links refused "
          f"{tally.links_refused}, messages lost {tally.messages_lost}, signed values refused {tally.signed_refused}")
    assert tally.failures() > 0
