"""keyroll.open and KeyRing: keys, status, errors, close, fork, and the
Django, native and Fernet formats against the Python implementations."""

from __future__ import annotations

import json
import os
import time

import cryptography.fernet as fernet
import django.core.signing as django_signing
import pytest

import keyroll
from conftest import KeyFile, new_key, wait_until


def open_file(keyfile: KeyFile, **options) -> keyroll.KeyRing:
    options.setdefault("interval", 0.2)
    return keyroll.open(keyfile.uri, **options)


def test_signing_and_verification_keys_follow_the_file(keyfile: KeyFile) -> None:
    first = keyfile.add(id="v1")
    with open_file(keyfile) as ring:
        assert ring.signing_key == first
        assert ring.verification_keys == [first]
        generation = ring.generation
        second = keyfile.add(id="v2")
        wait_until(lambda: ring.signing_key == second, what="the new key to sign")
        assert ring.verification_keys == [second, first]
        assert ring.generation > generation
        gen, signing, verifying = ring.snapshot()
        assert (signing, verifying) == (second, [second, first])
        assert gen == ring.generation


def test_status_names_keys_and_roles_never_material(keyfile: KeyFile) -> None:
    old = keyfile.add(id="old")
    new = keyfile.add(id="new")
    with open_file(keyfile) as ring:
        status = ring.status()
        assert status["health"] == "healthy"
        assert status["last_error"] is None
        assert 0 <= status["staleness_seconds"] < 5
        assert status["generation"] == ring.generation
        assert status["keys"] == [{"id": "new", "role": "current"}, {"id": "old", "role": "fallback"}]
        assert status["source"] == keyfile.uri
        assert old not in repr(status) and new not in repr(status) and new not in repr(ring)


def test_a_weak_key_at_run_time_keeps_the_last_good_set(keyfile: KeyFile) -> None:
    good = keyfile.add(id="good")
    with open_file(keyfile) as ring:
        keyfile.add("short", id="weak")
        status = wait_until(
            lambda: (s := ring.status())["health"] == "degraded" and s, what="the refusal in status"
        )
        assert "weak" in status["last_error"], status
        assert "short" not in status["last_error"]
        assert ring.signing_key == good
        assert ring.verification_keys == [good]


def test_a_weak_key_at_start_raises_with_the_reason(keyfile: KeyFile) -> None:
    keyfile.add("short", id="weak")
    with pytest.raises(keyroll.KeyrollError, match="weak") as raised:
        open_file(keyfile)
    assert "short" not in str(raised.value)


def test_an_unknown_scheme_raises_the_clis_message() -> None:
    with pytest.raises(keyroll.KeyrollError, match=r"unknown key source scheme `bogus://`; known schemes: env://"):
        keyroll.open("bogus://x")


def test_a_missing_file_raises_and_says_what_to_do(tmp_path) -> None:
    with pytest.raises(keyroll.KeyrollError, match="does not exist; create it"):
        keyroll.open(f"file://{tmp_path}/absent", interval=0.1)


@pytest.mark.parametrize(
    "options",
    [{"interval": -1}, {"interval": float("nan")}, {"fallback_window": float("inf")}, {"interval": 0}],
)
def test_bad_durations_are_value_errors(keyfile: KeyFile, options) -> None:
    keyfile.add()
    with pytest.raises(ValueError):
        keyroll.open(keyfile.uri, **options)


def test_options_reach_the_policy(keyfile: KeyFile) -> None:
    now = time.time()
    keyfile.add(id="v1", created=now - 100)
    keyfile.add(id="v2", created=now)
    # A long activation delay: the new key only verifies; no fallback kept.
    with open_file(keyfile, activation_delay=3600, max_fallbacks=0) as ring:
        assert [k["role"] for k in ring.status()["keys"]] == ["pending", "current"]
        assert ring.signing_key == keyfile.entries[1]["key"]
    with open_file(keyfile, activation_delay=0, max_fallbacks=0) as ring:
        assert ring.verification_keys == [keyfile.entries[0]["key"]]


def test_rotate_is_the_librarys_rotation(keyfile: KeyFile) -> None:
    old = keyfile.add(id="v1")
    before = keyfile.path.read_text()
    with pytest.raises(ValueError, match="would be weak.*nothing was published"):
        keyroll.rotate(keyfile.uri, chars=5)
    with pytest.raises(ValueError, match="not both"):
        keyroll.rotate(keyfile.uri, chars=50, bytes=32)
    assert keyfile.path.read_text() == before
    with pytest.raises(keyroll.KeyrollError, match="cannot be rotated by keyroll") as refused:
        keyroll.rotate("env://KEYROLL_TEST_NEVER_SET")
    assert refused.value.kind == "config"  # type: ignore[attr-defined]
    with open_file(keyfile, activation_delay=0) as ring:
        rotation = ring.rotate()
        assert rotation["steps"] == [f"published new key version {rotation['id']}", "it signs now"], rotation
        assert (rotation["role"], rotation["promoted"], rotation["disabled"]) == ("current", False, [])
        assert rotation["id"] == rotation["fingerprint"]  # a file's versions are named by their fingerprint
        wait_until(lambda: ring.signing_key != old, what="the rotated key to sign")
        new = ring.signing_key
        assert len(new) == 50 and ring.verification_keys == [new, old]
        assert ring.status()["keys"][0]["id"] == rotation["id"]
        assert new not in json.dumps(rotation) and old not in json.dumps(rotation)
    # Without a form asked for, the new key takes the form of the one that signs: a Fernet key.
    fernet_file = KeyFile(keyfile.path.with_name("fernet.json"))
    fernet_file.add(fernet.Fernet.generate_key().decode(), id="f1")
    rotated = keyroll.rotate(fernet_file.uri, activation_delay=0)
    with open_file(fernet_file) as ring:
        fernet.Fernet(ring.signing_key.encode())  # a valid Fernet key
        assert ring.status()["keys"][0]["id"] == rotated["id"]


def test_close_is_idempotent_and_later_use_raises(keyfile: KeyFile) -> None:
    keyfile.add()
    ring = open_file(keyfile)
    signer = ring.django_signer()
    ring.close()
    ring.close()
    assert ring.closed
    for use in (
        lambda: ring.signing_key,
        lambda: ring.verification_keys,
        lambda: ring.generation,
        ring.snapshot,
        ring.status,
        lambda: signer.sign("x"),
    ):
        with pytest.raises(keyroll.KeyrollError, match="closed"):
            use()


def test_non_utf8_material_raises_naming_the_key(keyfile: KeyFile) -> None:
    keyfile.entries = [{"id": "binary", "key_base64": "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA="}]
    keyfile.write()
    with open_file(keyfile) as ring:
        with pytest.raises(keyroll.KeyrollError, match="key binary is not UTF-8"):
            ring.signing_key
        # The Rust formats work on bytes and are unaffected.
        signer = ring.native_signer("s")
        assert signer.unsign(signer.sign("v")) == "v"


def test_a_child_forked_after_open_refreshes_on_its_own(keyfile: KeyFile) -> None:
    keyfile.add(id="v1")
    ring = open_file(keyfile)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only its own refresher can see what follows
        code = 1
        try:
            os.close(write_end)
            expected = os.read(read_end, 100).decode()
            wait_until(lambda: ring.signing_key == expected, what="the child to see the rotation")
            signer = ring.django_signer("fork")
            assert signer.verify(signer.sign("x")).key_id == "v2"
            assert ring.status()["health"] == "healthy"
            code = 0
        finally:
            os._exit(code)
    os.close(read_end)
    ring.close()  # the parent's refresher is gone: the child must not need it
    new = keyfile.add(id="v2")
    os.write(write_end, new.encode())
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


# ---- formats -----------------------------------------------------------



def test_django_signer_makes_and_reads_djangos_tokens(keyfile: KeyFile) -> None:
    old = keyfile.add(id="old")
    new = keyfile.add(id="new")
    with open_file(keyfile) as ring:
        ours = ring.django_signer("salty")
        theirs = django_signing.Signer(key=new, fallback_keys=[old], salt="salty")
        assert ours.sign("hello") == theirs.sign("hello")
        assert ours.unsign(theirs.sign("hé")) == "hé"
        by_old = django_signing.Signer(key=old, fallback_keys=[], salt="salty").sign("again")
        verified = ours.verify(by_old)
        assert (verified.value, verified.key_id, verified.role, verified.needs_resign) == (
            "again",
            "old",
            "fallback",
            True,
        )
        assert not ours.verify(ours.sign("v")).needs_resign
        with pytest.raises(keyroll.BadSignature, match="bad signature"):
            ours.unsign(by_old[:-1] + ("A" if by_old[-1] != "A" else "B"))
        with pytest.raises(keyroll.BadSignature):
            ring.django_signer("other").unsign(by_old)
        # Django's default salt.
        assert ring.django_signer().salt == "django.core.signing.Signer"
        assert ring.django_signer().unsign(django_signing.Signer(key=new, fallback_keys=[]).sign("d")) == "d"


def test_django_timestamp_signer_checks_max_age(keyfile: KeyFile) -> None:
    key = keyfile.add()
    with open_file(keyfile) as ring:
        ours = ring.django_signer("t", timestamp=True)
        theirs = django_signing.TimestampSigner(key=key, fallback_keys=[], salt="t")
        assert theirs.unsign(ours.sign("v"), max_age=60) == "v"
        token = theirs.sign("w")
        assert ours.unsign(token, max_age=60) == "w"
        assert ours.verify(token).timestamp == pytest.approx(time.time(), abs=5)
        with pytest.raises(keyroll.SignatureExpired):
            ours.unsign(_timestamped(key, "t", "x", time.time() - 120), max_age=60)
        assert isinstance(keyroll.SignatureExpired("x"), keyroll.BadSignature)
        with pytest.raises(ValueError, match="timestamped"):
            ring.django_signer("t").unsign(token, max_age=5)


def _timestamped(key: str, salt: str, value: str, at: float) -> str:
    """A TimestampSigner token made at ``at`` by Django itself."""
    signer = django_signing.TimestampSigner(key=key, fallback_keys=[], salt=salt)
    stamped = f"{value}:{django_signing.b62_encode(int(at))}"
    return django_signing.Signer.sign(signer, stamped)


def test_dumps_and_loads_match_django(keyfile: KeyFile) -> None:
    key = keyfile.add()
    obj = {"b": 1, "a": ["é", 2.5, None, True], "long": "x" * 200}
    with open_file(keyfile) as ring:
        ours = ring.django_signer("django.core.signing", timestamp=True)
        for compress in (False, True):
            token = ours.sign_object(obj, compress=compress)
            assert django_signing.loads(token, key=key, fallback_keys=[]) == obj
            theirs = django_signing.TimestampSigner(
                key=key, fallback_keys=[], salt="django.core.signing"
            ).sign_object(obj, compress=compress)
            assert ours.unsign_object(theirs, max_age=60).value == obj
            assert token.split(":")[0] == theirs.split(":")[0]


def test_native_signer_round_trips_and_says_which_key(keyfile: KeyFile) -> None:
    keyfile.add(id="v1")
    with open_file(keyfile) as ring:
        signer = ring.native_signer("sessions", max_age=60)
        token = signer.sign("user=42")
        keyfile.add(id="v2")
        wait_until(lambda: ring.status()["keys"][0]["id"] == "v2", what="v2")
        verified = signer.verify(token)
        assert (verified.value, verified.key_id, verified.needs_resign) == ("user=42", "v1", True)
        assert signer.verify(signer.sign("x")).key_id == "v2"
        with pytest.raises(keyroll.BadSignature):
            ring.native_signer("other").unsign(token)


def test_fernet_interoperates_with_cryptography(keyfile: KeyFile) -> None:
    old = fernet.Fernet.generate_key().decode()
    keyfile.add(old, id="old")
    with open_file(keyfile) as ring:
        box = ring.fernet()
        token = box.encrypt(b"secret")
        assert fernet.Fernet(old).decrypt(token) == b"secret"
        new = fernet.Fernet.generate_key().decode()
        keyfile.add(new, id="new")
        wait_until(lambda: ring.status()["keys"][0]["id"] == "new", what="the new key")
        opened = box.decrypt_verified(token)
        assert (opened.value, opened.key_id, opened.needs_resign) == (b"secret", "old", True)
        rotated = box.rotate(token)
        assert fernet.MultiFernet([fernet.Fernet(new)]).decrypt(rotated) == b"secret"
        assert box.decrypt(fernet.Fernet(new).encrypt(b"theirs")) == b"theirs"
        with pytest.raises(keyroll.InvalidToken):
            box.decrypt(b"gAAAAAnot-a-token")
        with pytest.raises(keyroll.InvalidToken, match="expired"):
            box.decrypt(fernet.Fernet(new).encrypt_at_time(b"x", int(time.time()) - 100), ttl=10)
    keyfile.add(new_key(), id="django-style")
    with open_file(keyfile) as ring:
        with pytest.raises(keyroll.KeyrollError, match="django-style"):
            ring.fernet()
        assert ring.fernet("hkdf").decrypt(ring.fernet("hkdf").encrypt("t")) == b"t"
