"""`manage.py close_billing_periods`: close every ended billing period into invoices now."""

from django.core.management.base import BaseCommand

from apps.billing.invoicing import close_due_periods


class Command(BaseCommand):
    help = (
        "Close every organization's billing periods that ended at least BILLING_CLOSE_GRACE_S "
        "ago (what the beat task does). Prints the number of periods closed as the last line."
    )

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(str(close_due_periods()))
