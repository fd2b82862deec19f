"""`manage.py issue_credit_note INVOICE AMOUNT --reason TEXT`: correct an issued invoice."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.billing.errors import BillingRefused
from apps.billing.invoicing import issue_credit_note
from apps.billing.models import Invoice
from apps.ledger.money import InexactAmount, format_usd, parse_usd


class Command(BaseCommand):
    help = (
        "Issue a credit note against an invoice (by number) and give the amount (USD) back "
        "to the organization's balance. Prints the credit note number as the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("invoice", help="Invoice number, e.g. TG-000042.")
        parser.add_argument("amount", help="USD, at most 10 decimal places.")
        parser.add_argument("--reason", required=True)

    def handle(self, *args: object, **options: str) -> None:
        invoice = (
            Invoice.objects.select_related("organization").filter(number=options["invoice"]).first()
        )
        if invoice is None:
            raise CommandError(f"No invoice {options['invoice']!r}.")
        try:
            note = issue_credit_note(
                invoice, parse_usd(options["amount"]), reason=options["reason"]
            )
        except (InexactAmount, BillingRefused) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Credited {format_usd(note.amount)} USD to {invoice.organization}.")
        self.stdout.write(note.number)
