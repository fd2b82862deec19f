"""`manage.py balance ORG`: ingest pending usage, then print the exact USD balance."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis.exceptions import RedisError

from apps.ledger.money import format_usd
from apps.ledger.selectors import ledger_balance
from apps.metering.ingest import default_consumer_name, ingest_pending
from apps.metering.tasks import DEFAULT_CLAIM_IDLE_MS
from apps.tenants.models import Organization
from apps.tenants.selectors import find_organization

INGEST_BUDGET_S = 60.0  # a stream that never empties must not keep the command running


class Command(BaseCommand):
    help = (
        "Ingest the usage waiting in the stream, then print the organization's balance "
        "(USD, 10 decimal places) alone on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="Organization id or exact name.")

    def handle(self, *args: object, **options: str) -> None:
        try:
            organization = find_organization(options["organization"])
        except Organization.DoesNotExist:
            raise CommandError(f"No organization {options['organization']!r}.") from None
        try:
            ingest_pending(
                consumer=default_consumer_name(),
                claim_idle_ms=getattr(settings, "METERING_CLAIM_IDLE_MS", DEFAULT_CLAIM_IDLE_MS),
                time_budget_s=INGEST_BUDGET_S,
            )
        except RedisError as error:
            self.stderr.write(
                f"Could not ingest waiting usage ({error}); the balance may miss recent requests."
            )
        self.stdout.write(format_usd(ledger_balance(organization)))
