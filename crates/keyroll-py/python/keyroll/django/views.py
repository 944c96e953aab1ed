"""A readiness view: 200 while the key ring is healthy (or the app is disabled), 503 otherwise, with its status as JSON.

``path("ready", keyroll.django.views.ready)``. Works under WSGI and ASGI.
"""

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from . import live


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    keys = live.get()
    status: dict[str, Any]
    if keys is None:
        status = {"health": "disabled", "last_error": None, "generation": 0, "keys": []}
    else:
        status = keys.status()
    ready = status["health"] in ("healthy", "disabled")
    return JsonResponse(status, status=200 if ready else 503)
