"""Money going back: refunds and lost disputes become negative ledger entries.

`charge.refunded` carries the charge's cumulative `amount_refunded`. Each entry is keyed by the
charge and that cumulative amount, and posts only what the ledger has not yet recorded for the
charge, under the organization's billing lock, so partial refunds arriving twice or in any
order add up to exactly the final refunded amount.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum

from apps.audit.services import label_of
from apps.billing.amounts import cents_to_usd
from apps.billing.conf import currency
from apps.billing.errors import EventDataError, EventNotReady
from apps.billing.models import TopUp
from apps.billing.profiles import lock_profile, organization_for_customer
from apps.billing.topups import STRIPE_ACTOR
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.services import post_entry
from apps.tenants.models import Organization


def apply_charge_refunded(
    charge: dict[str, Any], *, actor: Any = None, memo: str = ""
) -> LedgerEntry | None:
    """`charge.refunded` (or an operator's refund, with the charge Stripe returned): debit what
    was refunded since the ledger last heard of this charge. The entry posted, or None when
    the ledger already had it all. `actor` names the staff user behind an operator's refund."""
    organization = _organization_of(charge)
    refunded = _usd(charge, "amount_refunded")
    charge_id = str(charge["id"])
    prefix = f"stripe:refund:{charge_id}:"
    with transaction.atomic():
        lock_profile(organization.pk)
        recorded = -(
            LedgerEntry.objects.filter(
                organization=organization, kind=EntryKind.REFUND, idempotency_key__startswith=prefix
            ).aggregate(total=Sum("amount"))["total"]
            or Decimal(0)
        )
        if refunded <= recorded:
            return None
        entry, _ = post_entry(
            organization,
            amount=-(refunded - recorded),
            kind=EntryKind.REFUND,
            idempotency_key=f"{prefix}{charge['amount_refunded']}",
            memo=memo or f"Stripe refund of charge {charge_id} (refunded in total: {refunded} USD)",
            actor=actor,
            actor_label=label_of(actor) if actor else STRIPE_ACTOR,
        )
        return entry


def apply_dispute_closed(dispute: dict[str, Any]) -> None:
    """`charge.dispute.closed`: a lost dispute takes the disputed amount back; a won (or
    otherwise closed) one changes nothing."""
    if dispute.get("status") != "lost":
        return
    organization = _organization_of(dispute)
    post_entry(
        organization,
        amount=-_usd(dispute, "amount"),
        kind=EntryKind.DISPUTE,
        idempotency_key=f"stripe:dispute:{dispute['id']}",
        memo=f"Stripe dispute {dispute['id']} of charge {dispute.get('charge')} lost",
        actor_label=STRIPE_ACTOR,
    )


def _usd(stripe_object: dict[str, Any], field: str) -> Decimal:
    if str(stripe_object.get("currency", "")).lower() != currency():
        raise EventDataError(f"{stripe_object.get('id')} is not in {currency()}")
    cents = stripe_object.get(field)
    if not isinstance(cents, int) or cents <= 0:
        raise EventDataError(f"{stripe_object.get('id')} has no positive {field}")
    return cents_to_usd(cents)


def _organization_of(stripe_object: dict[str, Any]) -> Organization:
    """The organization a charge or dispute belongs to: by the payment intent of one of our
    top-ups, else by the Stripe customer. EventNotReady if neither is known yet (the event
    that tells us may still be on its way)."""
    intent = stripe_object.get("payment_intent")
    if isinstance(intent, str) and intent:
        topup = (
            TopUp.objects.select_related("organization")
            .filter(stripe_payment_intent_id=intent)
            .first()
        )
        if topup is not None:
            return topup.organization
    customer = stripe_object.get("customer")
    organization = organization_for_customer(customer if isinstance(customer, str) else "")
    if organization is None:
        raise EventNotReady(f"no organization known for {stripe_object.get('id')} yet")
    return organization
