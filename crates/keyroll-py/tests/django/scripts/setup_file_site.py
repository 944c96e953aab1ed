"""Shared start for the scripts: Django configured by hand with keyroll.django over a key file."""

import json
import os
import sys

import django
from django.conf import settings


def configure(path, **options):
    settings.configure(
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "keyroll.django"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        KEYROLL={"KEYS": f"file://{path}", **options},
        SECRET_KEY="a-key-in-settings-py-that-the-ring-overrules-0123456789",
        LOGGING_CONFIG=None,
    )
    django.setup()


def write_keys(path, *keys):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        out.write("\n".join(keys) + "\n")
    os.replace(tmp, path)


def report(**result):
    print(json.dumps(result))
    sys.stdout.flush()
