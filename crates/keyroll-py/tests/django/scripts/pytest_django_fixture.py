"""Run by test_app.py with pytest-django (`pytest -p pytest_django --ds kr_site.settings THIS`):
its `settings` fixture pins keys while keyroll.django is on, and the ring is back afterwards."""

import pytest
from django.conf import settings
from django.core import signing

from keyroll.django import live


def test_the_settings_fixture_pins_the_key(settings):  # noqa: F811 - pytest-django's fixture
    ring_key = live.get().keys()[0]
    settings.SECRET_KEY = "pinned-by-the-settings-fixture"
    settings.SECRET_KEY_FALLBACKS = ["old-pinned"]
    assert signing.Signer(salt="s").sign("v") == signing.Signer(key="pinned-by-the-settings-fixture",
                                                                 salt="s").sign("v")
    assert signing.Signer(salt="s").fallback_keys == ["old-pinned"]
    assert ring_key != "pinned-by-the-settings-fixture"


@pytest.mark.django_db
def test_back_to_the_ring_after_the_fixture():
    assert settings.SECRET_KEY == live.get().keys()[0]
