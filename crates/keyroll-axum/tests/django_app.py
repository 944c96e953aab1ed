"""A minimal Django app using the signed_cookies session backend, keyed by a
keyroll text key file (first line SECRET_KEY, the others
SECRET_KEY_FALLBACKS), served on a loopback port printed on stdout."""

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

with open(sys.argv[1]) as f:
    keys = [line.strip() for line in f if line.strip() and not line.strip().startswith("#")]

settings.configure(
    DEBUG=False,
    SECRET_KEY=keys[0],
    SECRET_KEY_FALLBACKS=keys[1:],
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.sessions"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    DATABASES={},
)
django.setup()


def login(request):
    request.session["user"] = request.POST["user"]
    return HttpResponse("welcome %s\n" % request.POST["user"])


def me(request):
    user = request.session.get("user")
    if user is None:
        return HttpResponse("unauthorized\n", status=401)
    return HttpResponse(user)


urlpatterns = [path("login", login), path("me", me)]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


from django.core.wsgi import get_wsgi_application  # noqa: E402

server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=QuietHandler)
print(server.server_port, flush=True)
server.serve_forever()
