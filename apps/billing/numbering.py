"""Document numbers: sequential per series, without gaps, never reused.

The counter row of a series is locked (SELECT … FOR UPDATE) and incremented in the transaction
that stores the document. If that transaction rolls back, so does the increment; if it commits,
the number is taken for good. Take the number last in the transaction: the lock serializes
every writer of the series until commit.
"""

from django.db import connection

from apps.billing.conf import text_setting
from apps.billing.models import DocumentSeries

INVOICE_SERIES = "invoice"
CREDIT_NOTE_SERIES = "credit_note"
PREFIX_SETTING = {
    INVOICE_SERIES: "INVOICE_NUMBER_PREFIX",
    CREDIT_NOTE_SERIES: "CREDIT_NOTE_NUMBER_PREFIX",
}


def take_number(series: str) -> str:
    """The next number of `series`, e.g. `TG-000042`. Must run inside a transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("a document number is taken in the transaction that stores it")
    DocumentSeries.objects.bulk_create([DocumentSeries(name=series)], ignore_conflicts=True)
    counter = DocumentSeries.objects.select_for_update().get(name=series)
    counter.last_value += 1
    counter.save(update_fields=["last_value"])
    return f"{text_setting(PREFIX_SETTING[series])}{counter.last_value:06d}"
