from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.keys.models import APIKey
from apps.keys.selectors import find_key
from apps.keys.services import revoke_api_key


class Command(BaseCommand):
    help = "Revoke an API key by visible prefix or id. Every worker refuses it at once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("key", help="Visible prefix (e.g. tg_live_ab12cd) or id.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key = find_key(options["key"])
        except APIKey.DoesNotExist as error:
            raise CommandError(str(error)) from None
        key = revoke_api_key(key)
        self.stdout.write(f"revoked {key.prefix}")
