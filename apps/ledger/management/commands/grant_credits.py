"""`manage.py grant_credits ORG AMOUNT --reason TEXT`: give (or, negative, take) USD credits."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.ledger.money import InexactAmount, format_usd, parse_usd
from apps.ledger.selectors import ledger_balance
from apps.ledger.services import BelowSpendingFloor, IdempotencyConflict, grant_credits
from apps.tenants.models import Organization
from apps.tenants.selectors import find_organization


class Command(BaseCommand):
    help = (
        "Grant USD credits to an organization (a negative amount deducts). "
        "Prints the new balance, in USD, as the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="Organization id or exact name.")
        parser.add_argument("amount", help="USD, at most 10 decimal places, e.g. 25 or -0.5.")
        parser.add_argument("--reason", required=True, help="Why; stored as the entry's memo.")
        parser.add_argument(
            "--idempotency-key",
            default=None,
            help="Running the command again with the same key grants nothing more.",
        )

    def handle(self, *args: object, **options: str) -> None:
        try:
            organization = find_organization(options["organization"])
        except Organization.DoesNotExist:
            raise CommandError(f"No organization {options['organization']!r}.") from None
        try:
            amount = parse_usd(options["amount"])
            entry, created = grant_credits(
                organization,
                amount,
                reason=options["reason"],
                idempotency_key=options["idempotency_key"],
                actor_label="cli",
            )
        except (InexactAmount, BelowSpendingFloor, IdempotencyConflict) as error:
            raise CommandError(str(error)) from None
        if created:
            self.stdout.write(
                f"Posted {entry.kind} of {format_usd(entry.amount)} USD to {organization} "
                f"(entry {entry.pk})."
            )
        else:
            self.stdout.write(f"Already posted as entry {entry.pk}; nothing changed.")
        self.stdout.write(format_usd(ledger_balance(organization)))
