"""The options of keyroll.open, keyroll.rotate and Django's KEYROLL are the
Rust library's one table (``keyroll._keyroll.OPTIONS``): the type stubs, the
Django setting and the checks follow it, and a bad value is refused the same
way at every door."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

import keyroll
from keyroll import _keyroll
from conftest import KeyFile, OpenBao, new_key, wait_until

STUBS = Path(keyroll.__file__).resolve().parent / "_keyroll.pyi"
TYPES = {"seconds": "float | None", "count": "int | None"}


def stub_fields() -> dict[str, str]:
    tree = ast.parse(STUBS.read_text())
    (options,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Options"]
    return {
        field.target.id: ast.unparse(field.annotation)
        for field in options.body
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
    }


def test_the_stubs_typed_dict_is_the_table() -> None:
    table = {name: TYPES[unit] for name, unit, _default, _doc in _keyroll.OPTIONS}
    assert table, "the table is empty"
    assert stub_fields() == table


def test_every_option_is_a_django_setting() -> None:
    from keyroll.django import conf

    for name, _unit, _default, _doc in _keyroll.OPTIONS:
        assert name.upper() in conf.KNOWN
        assert conf.KEYWORDS[name.upper()] == name


def test_an_unknown_option_is_a_type_error_as_python_s_own(keyfile: KeyFile) -> None:
    keyfile.add(id="v1")
    with pytest.raises(TypeError, match=r"open\(\) got an unexpected keyword argument 'intervall'"):
        keyroll.open(keyfile.uri, intervall=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"rotate\(\) got an unexpected keyword argument 'window'"):
        keyroll.rotate(keyfile.uri, window=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"jitter": -1}, "jitter must not be negative"),
        ({"interval": 0}, "interval must be at least 10ms"),
        ({"fallback_window": float("nan")}, "fallback_window must be a number of seconds between 0 and"),
        ({"fallback_window": 1e12}, "fallback_window must be a number of seconds between 0 and 3153600000"),
        ({"fallback_window": "30d"}, r"fallback_window must be a number of seconds \(int or float\), not str"),
        ({"max_fallbacks": 2.5}, "max_fallbacks must be an int, not float"),
        ({"max_fallbacks": -1}, "max_fallbacks must not be negative"),
        ({"max_fallbacks": True}, "max_fallbacks must be an int, not bool"),
    ],
)
def test_a_bad_value_is_refused_naming_the_option(keyfile: KeyFile, options: dict[str, object], message: str) -> None:
    keyfile.add(id="v1")
    with pytest.raises(ValueError, match=message):
        keyroll.open(keyfile.uri, **options)  # type: ignore[arg-type]
    # Django's KEYROLL check asks the same question of the same table.
    ((name, value),) = options.items()
    assert re.match(message, f"{name} {_keyroll.check_option(name, value)}")


def test_none_keeps_the_default_and_ints_are_seconds(keyfile: KeyFile) -> None:
    keyfile.add(id="v1")
    with keyroll.open(keyfile.uri, interval=1, jitter=None, max_fallbacks=2, fallback_window=60) as ring:
        assert ring.status()["health"] == "healthy"
    assert _keyroll.check_option("interval", 1) is None
    assert _keyroll.check_option("max_fallbacks", 0) is None
    with pytest.raises(KeyError):
        _keyroll.check_option("intervall", 1)


def test_a_rotation_period_that_cannot_work_is_refused_at_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the Rust builder refuses them: a period of zero, and a store without compare-and-set,
    where every worker rotating could publish a key of its own."""
    monkeypatch.setenv("KEYROLL_TEST_ROTATE_KEY", new_key())
    uri = "env://KEYROLL_TEST_ROTATE_KEY"
    with pytest.raises(keyroll.KeyrollError, match="rotate_every must be longer than zero") as zero:
        keyroll.open(uri, rotate_every=0)
    assert zero.value.kind == "config"  # type: ignore[attr-defined]
    with pytest.raises(keyroll.KeyrollError, match="has no compare-and-set") as no_cas:
        keyroll.open(uri, rotate_every=3600)
    assert no_cas.value.kind == "config"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="rotate_every must not be negative"):
        keyroll.open(uri, rotate_every=-1)


def test_a_ring_rotates_its_store_and_reports_it_in_its_status(openbao: OpenBao) -> None:
    openbao.put(path="rotating")
    uri = openbao.uri("secret/rotating")
    # The default activation delay of a shared store (over 30 s) is longer than 3 s: a key
    # would be replaced before it ever signed.
    with pytest.raises(keyroll.KeyrollError, match="replaced before it ever signs"):
        keyroll.open(uri, rotate_every=3)
    with keyroll.open(uri, rotate_every=1.5, activation_delay=0.5, interval=0.2) as ring:
        rotation = ring.status()["rotation"]
        assert rotation["period_seconds"] == 1.5
        assert (rotation["published"], rotation["lost"], rotation["last_error"]) == (0, 0, None)
        first = ring.signing_key
        wait_until(lambda: ring.status()["rotation"]["published"] >= 1, timeout=10, what="a rotation")
        wait_until(lambda: ring.signing_key != first, timeout=10, what="the new key signing")
        assert ring.status()["rotation"]["next_due"] > time.time()
    with keyroll.open(uri) as plain:
        assert plain.status()["rotation"] is None
