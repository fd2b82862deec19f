"""Buying credits: the organization's Stripe customer, Checkout Sessions for one-time top-ups,
and the ledger credit when Stripe says a payment is ours.

A credit's idempotency key is the Stripe object that paid it (`stripe:checkout:<session id>`,
`stripe:payment_intent:<intent id>`), so however many events, retries or orderings report one
payment, it is credited once. `post_entry` forwards each new credit to the tenant's Redis hot
counter after commit.
"""

import logging
from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.billing import stripe_gateway
from apps.billing.amounts import cents_to_usd, usd_to_cents
from apps.billing.conf import currency, missing_stripe_settings, topup_limits
from apps.billing.errors import BillingNotConfigured, BillingRefused, EventDataError
from apps.billing.models import TopUp, TopUpSource, TopUpStatus
from apps.billing.profiles import lock_profile, owner_emails
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.money import InexactAmount, format_usd
from apps.ledger.services import post_entry
from apps.tenants.models import Organization

log = logging.getLogger(__name__)

STRIPE_ACTOR = "system:stripe"
PURPOSE_TOPUP = "topup"
PURPOSE_AUTO_RECHARGE = "auto_recharge"


def ensure_customer(organization: Organization) -> str:
    """The organization's Stripe customer id, created on first use and reused after. Concurrent
    first purchases wait on the profile lock, so only one customer is ever created."""
    with transaction.atomic():
        profile = lock_profile(organization.pk)
        if profile.stripe_customer_id:
            return profile.stripe_customer_id
        emails = owner_emails(organization.pk)
        profile.stripe_customer_id = stripe_gateway.create_customer(
            organization_id=organization.pk,
            name=organization.name,
            email=emails[0] if emails else "",
            idempotency_key=f"tollgate-customer-{organization.pk}",
        )
        profile.save(update_fields=["stripe_customer_id", "updated_at"])
        return profile.stripe_customer_id


def validate_topup_amount(amount: Decimal) -> int:
    """The amount (USD) in cents if it is whole cents within TOPUP_MIN_USD..TOPUP_MAX_USD;
    raises BillingRefused otherwise."""
    minimum, maximum = topup_limits()
    try:
        cents = usd_to_cents(amount)
    except InexactAmount:
        raise BillingRefused("Choose an amount in whole cents.") from None
    if not minimum <= amount <= maximum:
        raise BillingRefused(
            f"Choose an amount between {format_usd(minimum)} and {format_usd(maximum)} USD."
        )
    return cents


def start_checkout(
    organization: Organization,
    amount: Decimal,
    *,
    requested_by: AbstractBaseUser | None,
    save_card: bool,
    success_url: str,
    cancel_url: str,
) -> tuple[TopUp, str]:
    """A pending top-up of `amount` USD and the Stripe Checkout URL to send the buyer to.
    With `save_card` the card is kept for auto-recharge. Raises BillingNotConfigured without
    Stripe keys and BillingRefused for an amount outside the limits."""
    missing = missing_stripe_settings()
    if missing:
        raise BillingNotConfigured(missing)
    cents = validate_topup_amount(amount)
    customer_id = ensure_customer(organization)
    topup = TopUp.objects.create(
        organization=organization,
        source=TopUpSource.CHECKOUT,
        amount=amount,
        currency=currency(),
        save_card=save_card,
        requested_by=requested_by,
    )
    session = stripe_gateway.create_checkout_session(
        customer_id=customer_id,
        amount_cents=cents,
        currency=topup.currency,
        product_name=f"Tollgate credits for {organization.name}",
        metadata=payment_metadata(topup, PURPOSE_TOPUP),
        save_card=save_card,
        success_url=success_url,
        cancel_url=cancel_url,
        idempotency_key=f"tollgate-topup-{topup.pk}-checkout",
    )
    TopUp.objects.filter(pk=topup.pk).update(stripe_checkout_session_id=session.id)
    topup.stripe_checkout_session_id = session.id
    return topup, session.url


def payment_metadata(topup: TopUp, purpose: str) -> dict[str, str]:
    """What Stripe keeps on the session and payment so its events lead back to the top-up."""
    return {
        "tollgate_org_id": str(topup.organization_id),
        "tollgate_topup_id": str(topup.pk),
        "tollgate_purpose": purpose,
        "tollgate_save_card": "1" if topup.save_card else "0",
    }


def apply_checkout_paid(session: dict[str, Any]) -> None:
    """`checkout.session.completed` / `async_payment_succeeded`: credit a paid top-up once.
    An unpaid session (a delayed payment method) waits for its async_payment_succeeded event;
    a session that is not one of ours is ignored."""
    if session.get("mode") != "payment" or session.get("payment_status") != "paid":
        return
    topup = _topup_of(session)
    if topup is None:
        log.info("Checkout session %s is not a Tollgate top-up", session.get("id"))
        return
    amount = _paid_amount(session, "amount_total", topup)
    credit_topup(
        topup,
        amount=amount,
        idempotency_key=f"stripe:checkout:{session['id']}",
        payment_intent_id=str(session.get("payment_intent") or ""),
        memo=f"Stripe Checkout {session['id']}",
    )


def apply_checkout_expired(session: dict[str, Any]) -> None:
    """`checkout.session.expired`: the buyer never paid; the top-up is marked failed."""
    topup = _topup_of(session)
    if topup is not None:
        TopUp.objects.filter(pk=topup.pk, status=TopUpStatus.PENDING).update(
            status=TopUpStatus.FAILED, failure_code="expired", failure_message="Checkout expired."
        )


def credit_topup(
    topup: TopUp, *, amount: Decimal, idempotency_key: str, payment_intent_id: str, memo: str
) -> LedgerEntry:
    """Post the top-up's ledger credit (once per key) and mark it paid, in one transaction."""
    with transaction.atomic():
        entry, _ = post_entry(
            topup.organization,
            amount=amount,
            kind=EntryKind.TOPUP,
            idempotency_key=idempotency_key,
            memo=memo,
            actor_label=STRIPE_ACTOR,
        )
        changes: dict[str, Any] = {"status": TopUpStatus.PAID, "paid_at": timezone.now()}
        if payment_intent_id and not topup.stripe_payment_intent_id:
            changes["stripe_payment_intent_id"] = payment_intent_id
        TopUp.objects.filter(pk=topup.pk).exclude(status=TopUpStatus.PAID).update(**changes)
    return entry


def _topup_of(session: dict[str, Any]) -> TopUp | None:
    """The top-up a Checkout Session was created for (by our metadata, then by session id)."""
    metadata = session.get("metadata") or {}
    query = TopUp.objects.select_related("organization").filter(source=TopUpSource.CHECKOUT)
    topup_id = str(metadata.get("tollgate_topup_id", ""))
    if topup_id.isdigit():
        topup = query.filter(pk=int(topup_id)).first()
        if topup is not None:
            return topup
    return query.filter(stripe_checkout_session_id=session.get("id")).first()


def _paid_amount(stripe_object: dict[str, Any], field: str, topup: TopUp) -> Decimal:
    """The amount Stripe collected (USD), refused unless it is what the top-up asked for."""
    if str(stripe_object.get("currency", "")).lower() != topup.currency:
        raise EventDataError(f"{stripe_object.get('id')} is not in {topup.currency}")
    cents = stripe_object.get(field)
    if not isinstance(cents, int) or cents_to_usd(cents) != topup.amount:
        raise EventDataError(
            f"{stripe_object.get('id')} paid {cents} cents; top-up {topup.pk} is "
            f"{format_usd(topup.amount)} USD"
        )
    return topup.amount
