"""Post-paid invoices in Stripe: push, finalize, send; and `invoice.paid` settles the ledger.

The push is a sequence of steps, each recorded on the Invoice row as soon as Stripe answers
(its Stripe id, how many lines are pushed, the Stripe status), and each sent with an idempotency
key derived from our invoice number. A re-run resumes after the last recorded step and never
creates a second Stripe invoice or item; a crash between Stripe's answer and our record is
covered by the key (Stripe replays its first answer for 24 hours).
"""

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.billing import stripe_gateway
from apps.billing.amounts import cents_to_usd
from apps.billing.conf import int_setting, stripe_configured
from apps.billing.errors import EventDataError, EventNotReady
from apps.billing.models import Invoice, InvoiceLine, StripeInvoiceStatus
from apps.billing.topups import STRIPE_ACTOR, ensure_customer
from apps.ledger.models import EntryKind
from apps.ledger.services import post_entry

log = logging.getLogger(__name__)


def push_invoice(invoice_id: int) -> Invoice:
    """Create (or resume creating) the Stripe invoice of a post-paid Invoice: draft, one item
    per line, finalize, send. Raises StripeUnavailable to be retried later."""
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    if invoice.stripe_status == StripeInvoiceStatus.NOT_NEEDED:
        return invoice
    if not stripe_configured():
        log.warning("Invoice %s waits for Stripe keys to be pushed", invoice.number)
        return invoice
    customer_id = ensure_customer(invoice.organization)
    if invoice.stripe_status == StripeInvoiceStatus.PENDING:
        _create_draft(invoice, customer_id)
    if invoice.stripe_status == StripeInvoiceStatus.DRAFT:
        _push_lines(invoice, customer_id)
        result = stripe_gateway.finalize_invoice(
            invoice.stripe_invoice_id, idempotency_key=_key(invoice, "finalize")
        )
        _advance(
            invoice, StripeInvoiceStatus.FINALIZED, stripe_hosted_url=result.hosted_invoice_url
        )
    if invoice.stripe_status == StripeInvoiceStatus.FINALIZED:
        stripe_gateway.send_invoice(
            invoice.stripe_invoice_id, idempotency_key=_key(invoice, "send")
        )
        _advance(invoice, StripeInvoiceStatus.SENT)
    return invoice


def unpushed_invoices(older_than: timedelta) -> list[int]:
    """Post-paid invoices issued more than `older_than` ago whose Stripe push has not finished
    (the push queued at issue time failed or is still running)."""
    return list(
        Invoice.objects.filter(
            issued_at__lt=timezone.now() - older_than,
            stripe_status__in=[
                StripeInvoiceStatus.PENDING,
                StripeInvoiceStatus.DRAFT,
                StripeInvoiceStatus.FINALIZED,
            ],
        ).values_list("pk", flat=True)
    )


def _create_draft(invoice: Invoice, customer_id: str) -> None:
    stripe_id = stripe_gateway.create_invoice(
        customer_id=customer_id,
        currency=invoice.currency,
        description=(
            f"Tollgate usage {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d} "
            f"(invoice {invoice.number})"
        ),
        metadata=_metadata(invoice),
        days_until_due=int_setting("INVOICE_DAYS_UNTIL_DUE"),
        idempotency_key=_key(invoice, "create"),
    )
    _advance(invoice, StripeInvoiceStatus.DRAFT, stripe_invoice_id=stripe_id)


def _push_lines(invoice: Invoice, customer_id: str) -> None:
    lines = InvoiceLine.objects.filter(invoice=invoice, position__gt=invoice.stripe_lines_pushed)
    for line in lines.order_by("position"):
        stripe_gateway.add_invoice_item(
            customer_id=customer_id,
            invoice_id=invoice.stripe_invoice_id,
            amount_cents=line.amount_cents,
            currency=invoice.currency,
            description=line_description(line),
            metadata={**_metadata(invoice), "tollgate_line": str(line.position)},
            idempotency_key=_key(invoice, f"line-{line.position}"),
        )
        Invoice.objects.filter(pk=invoice.pk).update(stripe_lines_pushed=line.position)
        invoice.stripe_lines_pushed = line.position


def line_description(line: InvoiceLine) -> str:
    return (
        f"{line.model}: {line.requests:,} requests, {line.input_tokens:,} input tokens at "
        f"{line.input_price_per_mtok.normalize():f} USD/M, {line.output_tokens:,} output tokens "
        f"at {line.output_price_per_mtok.normalize():f} USD/M"
    )


def _advance(invoice: Invoice, status: str, **fields: Any) -> None:
    Invoice.objects.filter(pk=invoice.pk).update(stripe_status=status, **fields)
    invoice.stripe_status = status
    for name, value in fields.items():
        setattr(invoice, name, value)


def _key(invoice: Invoice, step: str) -> str:
    return f"tollgate-invoice-{invoice.number}-{step}"


def _metadata(invoice: Invoice) -> dict[str, str]:
    return {
        "tollgate_invoice_number": invoice.number,
        "tollgate_org_id": str(invoice.organization_id),
    }


def apply_invoice_paid(stripe_invoice: dict[str, Any]) -> None:
    """`invoice.paid`: credit what the customer paid (kind invoice_settlement, once per Stripe
    invoice) and mark our invoice paid. Stripe invoices we did not create are ignored."""
    metadata = stripe_invoice.get("metadata") or {}
    number = metadata.get("tollgate_invoice_number")
    if not number:
        log.info("Stripe invoice %s is not a Tollgate invoice", stripe_invoice.get("id"))
        return
    invoice = Invoice.objects.select_related("organization").filter(number=number).first()
    if invoice is None:
        raise EventNotReady(f"invoice {number} is not stored yet")
    if stripe_invoice.get("currency") != invoice.currency:
        raise EventDataError(f"{stripe_invoice.get('id')} is not in {invoice.currency}")
    paid = stripe_invoice.get("amount_paid")
    if not isinstance(paid, int) or paid < 0:
        raise EventDataError(f"{stripe_invoice.get('id')} has no amount_paid")
    with transaction.atomic():
        if paid > 0:
            post_entry(
                invoice.organization,
                amount=cents_to_usd(paid),
                kind=EntryKind.INVOICE_SETTLEMENT,
                idempotency_key=f"stripe:invoice:{stripe_invoice['id']}",
                memo=f"Invoice {invoice.number} paid through Stripe ({stripe_invoice['id']})",
                actor_label=STRIPE_ACTOR,
            )
        Invoice.objects.filter(pk=invoice.pk, paid_at__isnull=True).update(
            paid_at=timezone.now(), stripe_status=StripeInvoiceStatus.PAID
        )
