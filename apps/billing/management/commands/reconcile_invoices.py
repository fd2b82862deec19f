"""`manage.py reconcile_invoices`: check every closed period and print the mismatches."""

from django.core.management.base import BaseCommand

from apps.billing.reconciliation import reconcile_closed_periods


class Command(BaseCommand):
    help = (
        "Check every closed billing period: invoice total = sum of lines = usage rows = usage "
        "debits in the ledger. Prints one line per mismatch, then their number as the last line."
    )

    def handle(self, *args: object, **options: object) -> None:
        mismatches = reconcile_closed_periods()
        for mismatch in mismatches:
            self.stdout.write(mismatch.describe())
        self.stdout.write(str(len(mismatches)))
