"""A typed user of the keyroll package: ``mypy --strict`` over this file checks
the package's stubs (``_keyroll.pyi``) and ``py.typed`` as a user's type
checker sees them (scripts/test runs it against the installed package)."""

from __future__ import annotations

from typing import Optional

import keyroll
from flask import Flask
from keyroll.flask import KeyRoll


def sessions(uri: str) -> Optional[str]:
    with keyroll.open(uri, interval=30, jitter=3.0, fallback_window=30 * 86400) as ring:
        signer: keyroll.DjangoSigner = ring.django_signer("sessions", timestamp=True)
        token: str = signer.sign("user=42")
        try:
            verified: keyroll.Verified = signer.verify(token, max_age=3600)
        except keyroll.SignatureExpired:
            return None
        except keyroll.BadSignature:
            return None
        if verified.needs_resign:
            token = signer.sign(str(verified.value))
        generation: int
        current: str
        accepted: list[str]
        generation, current, accepted = ring.snapshot()
        assert current in accepted and generation >= 1 and ring.signing_key == current
        health: str = ring.status()["health"]
        return token if health == "healthy" else None


def secrets(ring: keyroll.KeyRing, plaintext: bytes) -> bytes:
    fernet = ring.fernet("hkdf")
    token: bytes = fernet.encrypt(plaintext)
    try:
        decrypted = fernet.decrypt_verified(token, ttl=60.0)
    except keyroll.InvalidToken:
        raise
    return fernet.rotate(token) if decrypted.needs_resign else token


def native(ring: keyroll.KeyRing) -> str:
    signer = ring.native_signer("links", timestamp=True, max_age=900.0)
    return signer.unsign(signer.sign("reset:42"))


def flask_app(uri: str) -> Flask:
    app = Flask(__name__)
    extension = KeyRoll(app, keys=uri, interval=30)
    changed: bool = extension.sync()
    assert isinstance(changed, bool)
    return app
