"""Operators refunding a paid top-up through Stripe.

Two steps, so that a crash or a timeout between them never refunds twice or loses the debit:

1. `request_topup_refund` checks the rules and stores a `TopUpRefund` row (status requested)
   holding the idempotency key of the Stripe call, under the organization's billing lock;
2. `send_topup_refund` calls Stripe with that key and, in one transaction, posts the ledger
   debit (the entry the `charge.refunded` webhook would post: whichever arrives first posts
   it, the other adds nothing), marks the row and writes the audit entry.

A refund Stripe could not be reached for stays "requested"; sending it again re-sends the same
request, which Stripe answers once.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.audit.services import record_audit
from apps.billing.amounts import CENT, usd_to_cents
from apps.billing.errors import BillingRefused
from apps.billing.models import RefundStatus, TopUp, TopUpRefund, TopUpStatus
from apps.billing.profiles import lock_profile
from apps.billing.reversals import apply_charge_refunded
from apps.billing.stripe_gateway import StripeRefused, refund_payment
from apps.ledger.money import exact_usd, format_usd
from apps.ledger.selectors import cached_balance
from apps.ledger.services import BelowSpendingFloor, check_spending_floor, lock_balance

# Refunds that hold (or may still take) part of a top-up's amount.
OUTSTANDING = (RefundStatus.REQUESTED, RefundStatus.SUCCEEDED, RefundStatus.PENDING)


def refund_topup_as_staff(
    topup: TopUp, amount: Decimal, *, reason: str, actor: Any, idempotency_key: str
) -> TopUpRefund:
    """Refund `amount` USD of a paid top-up to its card; the refund row, in its final state.

    Raises BillingRefused for a refund the rules forbid (nothing stored, nothing sent) and
    StripeUnavailable when Stripe cannot be reached (the row stays requested: try again)."""
    refund = request_topup_refund(
        topup, amount, reason=reason, actor=actor, idempotency_key=idempotency_key
    )
    if refund.status != RefundStatus.REQUESTED:  # the same form posted again
        return refund
    return send_topup_refund(refund, actor=actor)


def request_topup_refund(
    topup: TopUp, amount: Decimal, *, reason: str, actor: Any, idempotency_key: str
) -> TopUpRefund:
    """Check the rules and store the refund as requested; a repeated key returns its row."""
    existing = TopUpRefund.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    amount = _whole_cents(amount)
    if not reason.strip():
        raise BillingRefused("A reason is required.")
    with transaction.atomic():
        lock_profile(topup.organization_id)
        topup = TopUp.objects.select_related("organization").get(pk=topup.pk)
        _check_refundable(topup, amount)
        return TopUpRefund.objects.create(
            topup=topup,
            amount=amount,
            reason=reason.strip(),
            idempotency_key=idempotency_key,
            requested_by=actor if getattr(actor, "pk", None) else None,
        )


def send_topup_refund(refund: TopUpRefund, *, actor: Any) -> TopUpRefund:
    """Ask Stripe for a requested refund and record the outcome (see the module docstring)."""
    topup = refund.topup
    try:
        stripe_refund = refund_payment(
            payment_intent_id=topup.stripe_payment_intent_id,
            amount_cents=usd_to_cents(refund.amount),
            metadata={"tollgate_topup_id": str(topup.pk), "tollgate_refund_id": str(refund.pk)},
            idempotency_key=f"tollgate-{refund.idempotency_key}",
        )
    except StripeRefused as error:
        _mark(refund, RefundStatus.FAILED, failure_message=str(error))
        raise BillingRefused(f"Stripe refused the refund: {error}") from error
    if stripe_refund.status == "failed":
        _mark(refund, RefundStatus.FAILED, stripe_refund_id=stripe_refund.id)
        raise BillingRefused(f"Stripe could not refund to the card (refund {stripe_refund.id}).")
    with transaction.atomic():
        lock_profile(topup.organization_id)
        before = cached_balance(topup.organization)
        entry = apply_charge_refunded(
            stripe_refund.charge,
            actor=actor,
            memo=f"Refund of top-up {topup.pk} ({stripe_refund.id}): {refund.reason}",
        )
        status = RefundStatus.SUCCEEDED
        if stripe_refund.status != "succeeded":
            status = RefundStatus.PENDING
        _mark(refund, status, stripe_refund_id=stripe_refund.id)
        record_audit(
            actor=actor,
            action="billing.refund_topup",
            target=topup,
            before={"balance": before},
            after={
                "balance": cached_balance(topup.organization),
                "amount": refund.amount,
                "stripe_refund": stripe_refund.id,
                "stripe_status": stripe_refund.status,
                "ledger_entry": entry.pk if entry else None,
            },
            reason=refund.reason,
        )
    return refund


def refundable_amount(topup: TopUp) -> Decimal:
    """What is left to refund of the top-up: paid minus refunds made or under way here."""
    taken = topup.refunds.filter(status__in=OUTSTANDING).aggregate(total=Sum("amount"))["total"]
    return exact_usd(topup.amount - (taken or Decimal(0)))


def _check_refundable(topup: TopUp, amount: Decimal) -> None:
    if topup.status != TopUpStatus.PAID or not topup.stripe_payment_intent_id:
        raise BillingRefused("Only a paid top-up with a Stripe payment can be refunded.")
    left = refundable_amount(topup)
    if amount > left:
        raise BillingRefused(
            f"At most {format_usd(left)} USD of this top-up is left to refund "
            f"(paid {format_usd(topup.amount)} USD)."
        )
    organization = topup.organization
    try:  # the lock deductions take, so a refund and a deduction cannot both pass the floor
        check_spending_floor(organization, lock_balance(organization), -amount)
    except BelowSpendingFloor as error:
        raise BillingRefused(f"{error} Refund less.") from None


def _whole_cents(amount: Decimal) -> Decimal:
    amount = exact_usd(amount)
    if amount <= 0 or amount != amount.quantize(CENT):
        raise BillingRefused("The amount must be a positive number of whole cents.")
    return amount


def _mark(refund: TopUpRefund, status: str, **fields: str) -> None:
    refund.status = status
    refund.completed_at = timezone.now()
    for name, value in fields.items():
        setattr(refund, name, value)
    refund.save(update_fields=["status", "completed_at", *fields])
