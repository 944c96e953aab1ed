"""Live ``SECRET_KEY`` rotation for Django.

Add ``"keyroll.django"`` to ``INSTALLED_APPS`` and set, for example::

    KEYROLL = {"KEYS": "vault://vault.internal:8200/secret/myapp", "INTERVAL": 30}

From ``AppConfig.ready()`` on, ``settings.SECRET_KEY`` and
``settings.SECRET_KEY_FALLBACKS`` follow the key ring in every process.
See docs/PYTHON.md.
"""
