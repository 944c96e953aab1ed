"""``manage.py keyroll status`` and ``manage.py keyroll rotate``."""

import json
from argparse import ArgumentParser
from typing import Any, Optional

from django.core.management.base import BaseCommand, CommandError

import keyroll

from ... import live
from ...checks import DJANGO_MIN_LENGTH as DJANGO_KEY_CHARS


class Command(BaseCommand):
    help = "Show the key ring's status, or publish a new key in the store (keyroll rotate)."
    # `status` is needed most when the store is down, which the keyroll system checks report
    # as errors: they must not stop it. (`check` runs them.)
    requires_system_checks = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        status = commands.add_parser("status", help="health, last error, staleness, generation, key ids and roles")
        status.add_argument("--json", action="store_true", help="print the status as JSON")
        rotate = commands.add_parser("rotate", help="publish a new key in the store (`keyroll rotate --keys KEYS`)")
        size = rotate.add_mutually_exclusive_group()
        size.add_argument("--chars", type=int, help="characters of Django's alphabet (default 50: Django's strength)")
        size.add_argument("--bytes", type=int, help="random bytes, base64 (a Fernet key: 32)")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        keys = live.get()
        if keys is None:
            raise CommandError("keyroll.django is disabled (KEYROLL['ENABLED'] is False).")
        if action == "status":
            self.status(keys, options["json"])
        else:
            self.rotate(keys, options["chars"], options["bytes"])

    def status(self, keys: live.LiveKeys, as_json: bool) -> None:
        status = keys.status()
        if as_json:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
        else:
            self.stdout.write(f"health: {status['health']}")
            self.stdout.write(f"generation: {status['generation']}")
            if status.get("source"):
                self.stdout.write(f"source: {status['source']}")
            if status.get("staleness_seconds") is not None:
                self.stdout.write(f"staleness: {status['staleness_seconds']:.1f} s")
            if status.get("last_error"):
                self.stdout.write(f"last error: {status['last_error']}")
            for key in status.get("keys", []):
                self.stdout.write(f"key {key['id']}: {key['role']}")
        if status["health"] != "healthy":
            raise CommandError(f"keys not healthy: {status['health']}", returncode=1)

    def rotate(self, keys: live.LiveKeys, chars: Optional[int], size: Optional[int]) -> None:
        if chars is None and size is None:
            chars = DJANGO_KEY_CHARS  # a key Django's own check (and keyroll.W003) accepts
        # keyroll's own rotation (the Rust code `keyroll rotate` runs), with the
        # KEYROLL options: it prints the new version id and its role, never the key.
        try:
            rotation = keyroll.rotate(keys.config.keys, chars=chars, bytes=size, **keys.config.options)
        except (keyroll.KeyrollError, ValueError) as error:
            raise CommandError(f"keyroll rotate failed: {error}") from None
        for step in rotation["steps"]:
            self.stdout.write(step)
