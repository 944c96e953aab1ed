"""The site ``request_cost.py`` measures: one view that reads and updates a signed-cookie
session, on Django with keyroll.django (``side="keyroll"``) or with the same keys static in
settings (``side="static"``). Under gunicorn it is configured from the environment
(``KEYROLL_BENCH_SIDE``, ``KEYROLL_BENCH_KEYFILE``, ``KEYROLL_BENCH_KEYS``) and served as
``bench_site:application``."""

from __future__ import annotations

import json
import os

from django.conf import settings
from django.http import HttpResponse
from django.urls import path


def view(request):
    request.session["n"] = request.session.get("n", 0) + 1
    return HttpResponse("ok")


urlpatterns = [path("", view)]


def configure(side: str, keys: list, keyfile: str) -> None:
    """Django configured for ``side`` and set up."""
    import django

    common = dict(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver", "127.0.0.1"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        DATABASES={},
        LOGGING_CONFIG=None,
        USE_TZ=True,
    )
    if side == "keyroll":
        settings.configure(
            INSTALLED_APPS=["django.contrib.sessions", "keyroll.django"],
            KEYROLL={"KEYS": f"file://{keyfile}", "INTERVAL": 3600},
            **common,
        )
    else:
        settings.configure(
            INSTALLED_APPS=["django.contrib.sessions"],
            SECRET_KEY=keys[0],
            SECRET_KEY_FALLBACKS=keys[1:],
            **common,
        )
    django.setup()
    assert settings.SECRET_KEY == keys[0] and list(settings.SECRET_KEY_FALLBACKS) == keys[1:]


if "KEYROLL_BENCH_SIDE" in os.environ and __name__ != "__main__":
    configure(os.environ["KEYROLL_BENCH_SIDE"], json.loads(os.environ["KEYROLL_BENCH_KEYS"]),
              os.environ["KEYROLL_BENCH_KEYFILE"])
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
