"""Closing billing periods into invoices, and credit notes that correct them.

A close runs in one transaction under the organization's billing lock: if the period has a
PeriodClose row it does nothing; otherwise it sums the period's usage rows per model and price
pair into lines, takes the next invoice number and stores the invoice, its lines and the
PeriodClose row. Prepaid organizations get a statement (already paid from credits; it also shows
the top-ups of the period); post-paid organizations get an invoice that is then pushed to Stripe
(apps/billing/stripe_invoices.py). A period without usage gives no post-paid invoice, and a
prepaid period without usage or top-ups gives no statement.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from apps.billing.after_commit import after_commit
from apps.billing.amounts import allocate_cents, round_to_cents
from apps.billing.conf import currency, int_setting
from apps.billing.errors import BillingRefused
from apps.billing.models import (
    CreditNote,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    PeriodClose,
    StripeInvoiceStatus,
)
from apps.billing.numbering import CREDIT_NOTE_SERIES, INVOICE_SERIES, take_number
from apps.billing.periods import period_containing
from apps.billing.profiles import lock_profile
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.money import exact_usd, format_usd, quantize_usd
from apps.ledger.services import post_entry
from apps.metering.models import UsageRecord
from apps.tenants.models import BillingMode, Organization

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LineDraft:
    """The usage of one model at one price pair (USD per million tokens) in a period."""

    model: str
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    requests: int
    input_tokens: int
    output_tokens: int
    amount: Decimal  # USD: sum of the requests' charged cost


def usage_in_period(organization_id: int, start: datetime, end: datetime) -> QuerySet[UsageRecord]:
    """The organization's usage rows that started in [start, end)."""
    return UsageRecord.objects.filter(
        organization_id=organization_id, started_at__gte=start, started_at__lt=end
    )


def usage_lines(organization_id: int, start: datetime, end: datetime) -> list[LineDraft]:
    """One line per model and price pair, sorted, summed by PostgreSQL (exact numerics)."""
    rows = (
        usage_in_period(organization_id, start, end)
        .values("model", "input_price_per_mtok", "output_price_per_mtok")
        .annotate(
            requests=Count("pk"),
            input_tokens=Sum("prompt_tokens"),
            output_tokens=Sum("completion_tokens"),
            amount=Sum("cost"),
        )
        .order_by("model", "input_price_per_mtok", "output_price_per_mtok")
    )
    return [
        LineDraft(
            model=row["model"],
            input_price_per_mtok=row["input_price_per_mtok"],
            output_price_per_mtok=row["output_price_per_mtok"],
            requests=row["requests"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            amount=quantize_usd(row["amount"]),
        )
        for row in rows
    ]


def topups_in_period(organization_id: int, start: datetime, end: datetime) -> Decimal:
    """Credits bought (top-up entries posted) in [start, end), USD."""
    total = LedgerEntry.objects.filter(
        organization_id=organization_id,
        kind=EntryKind.TOPUP,
        created_at__gte=start,
        created_at__lt=end,
    ).aggregate(total=Sum("amount"))["total"]
    return quantize_usd(total or Decimal(0))


def close_period(
    organization: Organization, start: datetime, end: datetime
) -> tuple[PeriodClose, bool]:
    """Close [start, end) for the organization; (the close, whether it was new). Closing a
    closed period returns its close and changes nothing."""
    with transaction.atomic():
        lock_profile(organization.pk)
        existing = PeriodClose.objects.filter(organization=organization, period_start=start).first()
        if existing is not None:
            return existing, False
        lines = usage_lines(organization.pk, start, end)
        topups = topups_in_period(organization.pk, start, end)
        invoice = None
        if lines or (organization.billing_mode == BillingMode.PREPAID and topups > 0):
            invoice = _issue(organization, start, end, lines, topups)
        close = PeriodClose.objects.create(
            organization=organization, period_start=start, period_end=end, invoice=invoice
        )
    return close, True


def _issue(
    organization: Organization,
    start: datetime,
    end: datetime,
    lines: list[LineDraft],
    topups: Decimal,
) -> Invoice:
    total = quantize_usd(sum((line.amount for line in lines), Decimal(0)))
    total_cents = round_to_cents(total)
    statement = organization.billing_mode == BillingMode.PREPAID
    invoice = Invoice.objects.create(
        number=take_number(INVOICE_SERIES),
        organization=organization,
        kind=InvoiceKind.STATEMENT if statement else InvoiceKind.INVOICE,
        customer_name=organization.name,
        period_start=start,
        period_end=end,
        issued_at=timezone.now(),
        currency=currency(),
        total=total,
        total_cents=total_cents,
        request_count=sum(line.requests for line in lines),
        topups_total=topups,
        stripe_status=(
            StripeInvoiceStatus.NOT_NEEDED
            if statement or total_cents == 0
            else StripeInvoiceStatus.PENDING
        ),
    )
    cents = allocate_cents([line.amount for line in lines])
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            model=line.model,
            input_price_per_mtok=line.input_price_per_mtok,
            output_price_per_mtok=line.output_price_per_mtok,
            requests=line.requests,
            input_tokens=line.input_tokens,
            output_tokens=line.output_tokens,
            amount=line.amount,
            amount_cents=line_cents,
        )
        for position, (line, line_cents) in enumerate(zip(lines, cents, strict=True), start=1)
    )
    if invoice.stripe_status == StripeInvoiceStatus.PENDING:
        after_commit(_queue_push, invoice.pk)
    return invoice


def _queue_push(invoice_id: int) -> None:
    from apps.billing.tasks import push_invoice  # noqa: PLC0415 - tasks import this module

    push_invoice.delay(invoice_id)


def due_periods(organization: Organization, now: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The organization's periods not closed yet that ended at least BILLING_CLOSE_GRACE_S ago
    (late usage — requests still running at the end, ingest lag — has arrived by then). They
    follow the last closed period, or start with the period the organization was created in."""
    grace = timedelta(seconds=int_setting("BILLING_CLOSE_GRACE_S"))
    last = PeriodClose.objects.filter(organization=organization).order_by("-period_end").first()
    cursor = last.period_end if last else period_containing(organization.created_at)[0]
    while True:
        end = period_containing(cursor)[1]
        if end + grace > now:
            return
        yield cursor, end
        cursor = end


def close_due_periods(now: datetime | None = None) -> int:
    """Close every organization's due periods (see `due_periods`); how many were closed."""
    now = now or timezone.now()
    closed = 0
    for organization in Organization.objects.order_by("pk").iterator():
        for start, end in due_periods(organization, now):
            _, created = close_period(organization, start, end)
            closed += created
    return closed


def issue_credit_note(
    invoice: Invoice, amount: Decimal, *, reason: str, actor: AbstractBaseUser | None = None
) -> CreditNote:
    """Correct an issued invoice: a numbered credit note of `amount` USD (at most what the
    invoice's earlier credit notes left) and a ledger adjustment giving it back."""
    amount = exact_usd(amount)
    if amount <= 0 or not reason.strip():
        raise BillingRefused("A credit note needs a positive amount and a reason.")
    with transaction.atomic():
        lock_profile(invoice.organization_id)
        credited = invoice.credit_notes.aggregate(total=Sum("amount"))["total"] or Decimal(0)
        if credited + amount > invoice.total:
            raise BillingRefused(
                f"Credit notes would exceed the invoice total of {format_usd(invoice.total)} USD."
            )
        note = CreditNote.objects.create(
            number=take_number(CREDIT_NOTE_SERIES),
            invoice=invoice,
            amount=amount,
            reason=reason,
            issued_by=actor,
        )
        post_entry(
            invoice.organization,
            amount=amount,
            kind=EntryKind.ADJUSTMENT,
            idempotency_key=f"credit-note:{note.number}",
            memo=f"Credit note {note.number} for invoice {invoice.number}: {reason}",
            actor=actor,
            actor_label=getattr(actor, "email", "") if actor else "system:billing",
        )
    return note
