"""Reconciliation of closed billing periods: for each one, the invoice total (zero when the
period gave no invoice) must equal

1. the sum of its lines (and the lines' cents the invoice's cents);
2. the cost of the usage rows of the period, as they are now;
3. minus the usage debits in the ledger for those requests (key `usage:<request id>`).

Every mismatch is logged on `tollgate.billing.reconcile`, returned, and kept as an open
InvoiceDiscrepancy (one per period and check; seeing it again updates it) for operators.
Nothing is corrected automatically: a correction is a credit note or a ledger adjustment.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import CharField, F, Sum, Value
from django.db.models.functions import Concat, Now

from apps.billing.invoicing import usage_in_period
from apps.billing.models import DiscrepancyCheck, InvoiceDiscrepancy, InvoiceLine, PeriodClose
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.money import quantize_usd
from apps.ledger.services import usage_idempotency_key

log = logging.getLogger("tollgate.billing.reconcile")


@dataclass(frozen=True, slots=True)
class InvoiceMismatch:
    """One failed check of one closed period (amounts in USD)."""

    period_close_id: int
    organization_id: int
    invoice_number: str  # empty when the period gave no invoice
    period_start: datetime
    check: str
    expected: Decimal
    actual: Decimal

    def describe(self) -> str:
        return (
            f"org {self.organization_id} period {self.period_start:%Y-%m-%d} "
            f"invoice {self.invoice_number or '-'}: {self.check} expected {self.expected} "
            f"found {self.actual}"
        )


def reconcile_period(close: PeriodClose) -> list[InvoiceMismatch]:
    """The checks of one closed period."""
    invoice = close.invoice
    total = invoice.total if invoice else Decimal(0)
    found: dict[str, tuple[Decimal, Decimal]] = {}
    if invoice is not None:
        lines = InvoiceLine.objects.filter(invoice=invoice).aggregate(
            amount=Sum("amount"), cents=Sum("amount_cents")
        )
        found[DiscrepancyCheck.LINES] = (total, _usd(lines["amount"]))
        found[DiscrepancyCheck.CENTS] = (
            Decimal(invoice.total_cents),
            Decimal(lines["cents"] or 0),
        )
    found[DiscrepancyCheck.USAGE_ROWS] = (total, _usage_cost(close))
    found[DiscrepancyCheck.LEDGER] = (total, -_usage_debits(close))
    return [
        InvoiceMismatch(
            period_close_id=close.pk,
            organization_id=close.organization_id,
            invoice_number=invoice.number if invoice else "",
            period_start=close.period_start,
            check=check,
            expected=expected,
            actual=actual,
        )
        for check, (expected, actual) in found.items()
        if expected != actual
    ]


def reconcile_closed_periods() -> list[InvoiceMismatch]:
    """Check every closed period and record what does not match; the mismatches."""
    mismatches: list[InvoiceMismatch] = []
    closes = PeriodClose.objects.select_related("invoice").order_by("period_start", "pk")
    for close in closes.iterator():
        for mismatch in reconcile_period(close):
            log.error("Invoice reconciliation: %s", mismatch.describe())
            _record(mismatch)
            mismatches.append(mismatch)
    return mismatches


def open_discrepancies() -> list[InvoiceDiscrepancy]:
    """What operators still have to look at, oldest first."""
    return list(
        InvoiceDiscrepancy.objects.filter(resolved=False)
        .select_related("period_close__invoice")
        .order_by("detected_at", "pk")
    )


def _usage_cost(close: PeriodClose) -> Decimal:
    rows = usage_in_period(close.organization_id, close.period_start, close.period_end)
    return _usd(rows.aggregate(total=Sum("cost"))["total"])


def _usage_debits(close: PeriodClose) -> Decimal:
    """Sum (negative, USD) of the ledger's usage debits for the requests of the period."""
    prefix = usage_idempotency_key("")
    keys = usage_in_period(close.organization_id, close.period_start, close.period_end).values(
        ledger_key=Concat(Value(prefix), F("request_id"), output_field=CharField())
    )
    total = LedgerEntry.objects.filter(
        organization_id=close.organization_id, kind=EntryKind.USAGE, idempotency_key__in=keys
    ).aggregate(total=Sum("amount"))["total"]
    return _usd(total)


def _usd(value: Decimal | None) -> Decimal:
    return quantize_usd(value if value is not None else Decimal(0))


def _record(mismatch: InvoiceMismatch) -> None:
    """Update the open discrepancy of this period and check, or open one (a concurrent run
    that opened it first makes this one update it instead)."""
    try:
        _update_or_open(mismatch)
    except IntegrityError:
        _update_or_open(mismatch)


def _update_or_open(mismatch: InvoiceMismatch) -> None:
    with transaction.atomic():
        updated = InvoiceDiscrepancy.objects.filter(
            period_close_id=mismatch.period_close_id, check_name=mismatch.check, resolved=False
        ).update(
            expected=mismatch.expected,
            actual=mismatch.actual,
            last_seen_at=Now(),
            times_seen=F("times_seen") + 1,
        )
        if not updated:
            InvoiceDiscrepancy.objects.create(
                period_close_id=mismatch.period_close_id,
                check_name=mismatch.check,
                expected=mismatch.expected,
                actual=mismatch.actual,
            )
