"""What the scripted clients call: each answer says what the server verified."""

import os

from django.contrib import auth, messages
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from keyroll.django import live


def _generation():
    return live.get().ring.generation


@csrf_exempt
def login(request):
    user = auth.authenticate(request, username=request.POST["username"], password=request.POST["password"])
    if user is None:
        return JsonResponse({"ok": False}, status=403)
    auth.login(request, user)
    return JsonResponse({"ok": True, "pid": os.getpid()})


def whoami(request):
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"user": None, "pid": os.getpid()}, status=401)
    # After get_user(), a session that matched a fallback key carries the
    # current key's hash: true on every answer means re-hashed sessions.
    current = request.session.get(HASH_SESSION_KEY) == user.get_session_auth_hash()
    return JsonResponse({"user": user.get_username(), "hash_current": current, "generation": _generation(),
                         "pid": os.getpid()})


def reset_token(request):
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"user": None}, status=401)
    return JsonResponse({"uid": user.pk, "token": default_token_generator.make_token(user)})


def reset_check(request):
    user = auth.get_user_model().objects.get(pk=request.GET["uid"])
    ok = default_token_generator.check_token(user, request.GET["token"])
    return JsonResponse({"ok": ok, "pid": os.getpid()}, status=200 if ok else 403)


@csrf_exempt
def message(request):
    messages.info(request, request.POST["text"])
    return JsonResponse({"ok": True})


def read_messages(request):
    return JsonResponse({"messages": [m.message for m in messages.get_messages(request)]})


def signed(request):
    return JsonResponse({"value": signing.dumps({"n": request.GET["n"]})})


def unsigned(request):
    try:
        value = signing.loads(request.GET["value"])
    except signing.BadSignature:
        return JsonResponse({"ok": False, "pid": os.getpid()}, status=403)
    return JsonResponse({"ok": True, "value": value})
