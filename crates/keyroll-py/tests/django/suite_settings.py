"""Settings for Django's own test suite (tests/runtests.py --settings=suite_settings) with
keyroll.django installed: Django's test_sqlite settings plus KEYROLL over a key file.

runtests.py replaces INSTALLED_APPS with its module-level ALWAYS_INSTALLED_APPS list
when it starts; this module is imported just before, so it adds the app to that list.
"""

import os

import __main__
from test_sqlite import *  # noqa: F401,F403 - Django's own test settings

KEYROLL = {"KEYS": "file://" + os.environ["KEYROLL_SUITE_KEYS"], "INTERVAL": 1}

if "keyroll.django" not in getattr(__main__, "ALWAYS_INSTALLED_APPS", ["keyroll.django"]):
    __main__.ALWAYS_INSTALLED_APPS.append("keyroll.django")
