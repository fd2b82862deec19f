from argparse import ArgumentParser, ArgumentTypeError
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.keys.services import create_api_key
from apps.limits.services import MAX_LIMIT
from apps.tenants.models import Organization
from apps.tenants.selectors import find_organization


def parse_expiry(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--expires {value!r} is not an ISO 8601 date-time.") from None
    if moment.tzinfo is None:
        raise CommandError("--expires needs a time zone, e.g. 2027-01-31T00:00:00Z.")
    return moment


def parse_limit(value: str) -> int:
    """A limit: a whole number from 1 to MAX_LIMIT, written in decimal digits."""
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise ArgumentTypeError(f"{value!r} is not a whole number from 1 to {MAX_LIMIT}")
    return int(value)


class Command(BaseCommand):
    help = (
        "Create an API key for ORG (id or exact name), optionally with limits of its own below "
        "the plan's. The last line is the secret, shown once."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("org")
        parser.add_argument("--name", default="default")
        parser.add_argument("--expires", type=parse_expiry, help="ISO 8601 with a time zone.")
        parser.add_argument("--models", default="", help="Comma-separated allowed models.")
        parser.add_argument("--rpm", type=parse_limit, help="Requests per minute for this key.")
        parser.add_argument("--tpm", type=parse_limit, help="Tokens per minute for this key.")
        parser.add_argument(
            "--concurrency", type=parse_limit, help="Requests in flight at once for this key."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organization = find_organization(options["org"])
        except Organization.DoesNotExist:
            raise CommandError(f"No organization {options['org']!r}.") from None
        models = [name.strip() for name in options["models"].split(",") if name.strip()]
        key, secret = create_api_key(
            organization,
            name=options["name"],
            expires_at=options["expires"],
            allowed_models=models,
            rpm=options["rpm"],
            tpm=options["tpm"],
            max_concurrent=options["concurrency"],
        )
        self.stderr.write(f"created key {key.prefix}… (id {key.pk}) for {organization.name}")
        self.stdout.write(secret)
