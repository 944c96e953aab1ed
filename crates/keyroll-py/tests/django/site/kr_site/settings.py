"""The test site: a stock Django 5.2 project whose only key setting is KEYROLL.

There is no SECRET_KEY here: keyroll.django supplies it. The tests choose the
key source, options and session engine through the environment.
"""

import json
import os

KEYROLL = {"KEYS": os.environ["KEYROLL_TEST_KEYS"], **json.loads(os.environ.get("KEYROLL_TEST_OPTIONS", "{}"))}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "keyroll.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
SESSION_ENGINE = "django.contrib.sessions.backends." + os.environ.get("KEYROLL_TEST_SESSIONS", "db")
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("KEYROLL_TEST_DB", ":memory:"),
        "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ROOT_URLCONF = "kr_site.urls"
ALLOWED_HOSTS = ["*"]
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"keyroll.django": {"handlers": ["stderr"], "level": "INFO"}},
}
