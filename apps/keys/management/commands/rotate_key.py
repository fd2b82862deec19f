from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.keys.models import APIKey
from apps.keys.selectors import find_key
from apps.keys.services import rotate_api_key


class Command(BaseCommand):
    help = "Replace an API key. The last line is the new secret; the old key works for --grace s."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("key", help="Visible prefix or id of the key to replace.")
        parser.add_argument("--grace", type=int, default=0, help="Seconds the old key still works.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["grace"] < 0:
            raise CommandError("--grace must be zero or more seconds.")
        try:
            key = find_key(options["key"])
        except APIKey.DoesNotExist as error:
            raise CommandError(str(error)) from None
        if not key.is_active():
            raise CommandError(f"{key.prefix} is already revoked or expired.")
        new_key, secret = rotate_api_key(key, grace_seconds=options["grace"])
        self.stderr.write(
            f"{key.prefix} replaced by {new_key.prefix}; old key stops in {options['grace']}s"
        )
        self.stdout.write(secret)
