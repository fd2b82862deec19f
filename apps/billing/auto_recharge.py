"""Auto-recharge and low-balance alerts: "when the balance falls below X, add Y" with the saved
card, and "when it falls below Z, email the owners".

A *crossing* is the balance going from at or above a threshold to below it. Each threshold has
an `armed` flag on the BillingProfile. Under the profile's row lock, a check reads the ledger
balance and either claims the crossing (armed → disarmed, and for a recharge a TopUp row that a
unique constraint allows once per crossing number) or, once the balance is back at or above
the threshold, re-arms it. So one crossing gives one charge and one email, whatever the number
of workers checking at the same time.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.billing import notifications, stripe_gateway
from apps.billing.after_commit import after_commit
from apps.billing.amounts import cents_to_usd, usd_to_cents
from apps.billing.conf import currency, int_setting, stripe_configured
from apps.billing.errors import BillingRefused, EventDataError
from apps.billing.models import BillingChange, BillingProfile, TopUp, TopUpSource, TopUpStatus
from apps.billing.profiles import lock_profile
from apps.billing.topups import (
    PURPOSE_AUTO_RECHARGE,
    credit_topup,
    payment_metadata,
    validate_topup_amount,
)
from apps.ledger.money import exact_usd
from apps.ledger.selectors import cached_balance
from apps.tenants.models import Organization

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:auto_recharge"


# --- settings ---------------------------------------------------------------------------------


def configure_auto_recharge(
    organization: Organization,
    *,
    enabled: bool,
    threshold: Decimal,
    amount: Decimal,
    actor: AbstractBaseUser | None,
) -> BillingProfile:
    """Turn auto-recharge on or off with its threshold and amount (USD). Turning it on needs a
    saved card and an amount within the top-up limits; it starts armed."""
    threshold = exact_usd(threshold)
    if threshold < 0:
        raise BillingRefused("The threshold cannot be negative.")
    if enabled:
        validate_topup_amount(amount)
    with transaction.atomic():
        profile = lock_profile(organization.pk)
        if enabled and not profile.has_card:
            raise BillingRefused("Save a card first: buy credits with “save this card” ticked.")
        old = _recharge_values(profile)
        profile.auto_recharge_enabled = enabled
        profile.auto_recharge_threshold = threshold
        profile.auto_recharge_amount = exact_usd(amount)
        if enabled:
            profile.auto_recharge_armed = True
            profile.auto_recharge_disabled_reason = ""
        profile.save()
        _audit(organization, actor, "auto_recharge.configure", old, _recharge_values(profile))
    return profile


def configure_low_balance(
    organization: Organization, *, threshold: Decimal | None, actor: AbstractBaseUser | None
) -> BillingProfile:
    """Email the owners when the balance falls below `threshold` USD (None: never)."""
    if threshold is not None:
        threshold = exact_usd(threshold)
        if threshold < 0:
            raise BillingRefused("The threshold cannot be negative.")
    with transaction.atomic():
        profile = lock_profile(organization.pk)
        old = {"low_balance_threshold": _text(profile.low_balance_threshold)}
        profile.low_balance_threshold = threshold
        profile.low_balance_armed = True
        profile.save()
        new = {"low_balance_threshold": _text(threshold)}
        _audit(organization, actor, "low_balance.configure", old, new)
    return profile


def remember_card(intent: dict[str, Any]) -> None:
    """`payment_intent.succeeded` of a Checkout top-up whose buyer asked to save the card:
    keep the payment method for off-session charges."""
    metadata = intent.get("metadata") or {}
    if metadata.get("tollgate_save_card") != "1" or intent.get("setup_future_usage") is None:
        return
    payment_method = intent.get("payment_method")
    org_id = str(metadata.get("tollgate_org_id", ""))
    if not isinstance(payment_method, str) or not org_id.isdigit():
        raise EventDataError(f"{intent.get('id')} has no payment method or organization")
    with transaction.atomic():
        profile = lock_profile(int(org_id))
        if profile.stripe_customer_id and intent.get("customer") != profile.stripe_customer_id:
            raise EventDataError(f"{intent.get('id')} belongs to another customer")
        old = {"payment_method_id": profile.payment_method_id}
        profile.payment_method_id = payment_method
        profile.card_label = f"card saved {timezone.now():%Y-%m-%d}"
        profile.save(update_fields=["payment_method_id", "card_label", "updated_at"])
        _audit(profile.organization, None, "card.save", old, {"payment_method_id": payment_method})


# --- crossings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one balance check did."""

    recharge: TopUp | None = None  # claimed: charge it now
    low_balance_alert: bool = False


def check_balance(organization_id: int) -> CheckResult:
    """Check one organization's balance against its thresholds and claim what crossed: the
    low-balance email is sent after commit, a claimed recharge is returned to be charged."""
    with transaction.atomic():
        profile = lock_profile(organization_id)
        balance = cached_balance(profile.organization)
        alert = _check_low_balance(profile, balance)
        recharge = _check_recharge(profile, balance)
    return CheckResult(recharge=recharge, low_balance_alert=alert)


def check_and_recharge(organization_id: int) -> CheckResult:
    """`check_balance`, then charge a claimed recharge at once."""
    result = check_balance(organization_id)
    if result.recharge is not None:
        charge_recharge(result.recharge.pk)
    return result


def _check_low_balance(profile: BillingProfile, balance: Decimal) -> bool:
    threshold = profile.low_balance_threshold
    if threshold is None:
        return False
    if balance >= threshold:
        if not profile.low_balance_armed:
            _set_flags(profile, low_balance_armed=True)
        return False
    if not profile.low_balance_armed:
        return False
    _set_flags(profile, low_balance_armed=False)
    after_commit(notifications.send_low_balance, profile.organization_id, balance, threshold)
    return True


def _check_recharge(profile: BillingProfile, balance: Decimal) -> TopUp | None:
    if not (profile.auto_recharge_enabled and profile.has_card and stripe_configured()):
        return None
    if balance >= profile.auto_recharge_threshold:
        if not profile.auto_recharge_armed:
            _set_flags(profile, auto_recharge_armed=True)
        return None
    if not profile.auto_recharge_armed:
        return None
    if _recharges_in_last_hour(profile.organization_id) >= int_setting(
        "AUTO_RECHARGE_MAX_PER_HOUR"
    ):
        log.warning("Auto-recharge of org %d held back: hourly cap", profile.organization_id)
        return None
    crossing = profile.auto_recharge_crossings + 1
    _set_flags(profile, auto_recharge_armed=False, auto_recharge_crossings=crossing)
    return TopUp.objects.create(
        organization_id=profile.organization_id,
        source=TopUpSource.AUTO_RECHARGE,
        amount=profile.auto_recharge_amount,
        currency=currency(),
        crossing=crossing,
    )


def _set_flags(profile: BillingProfile, **values: Any) -> None:
    """Compare-and-set on the locked profile: the update must change exactly that row."""
    changed = BillingProfile.objects.filter(pk=profile.pk).update(**values)
    if changed != 1:
        raise RuntimeError(f"billing profile {profile.pk} vanished")
    for name, value in values.items():
        setattr(profile, name, value)


def _recharges_in_last_hour(organization_id: int) -> int:
    since = timezone.now() - timedelta(hours=1)
    return TopUp.objects.filter(
        organization_id=organization_id, source=TopUpSource.AUTO_RECHARGE, created_at__gte=since
    ).count()


# --- charging ---------------------------------------------------------------------------------


def charge_recharge(topup_id: int) -> TopUp:
    """Charge a claimed recharge off-session with the saved card. The idempotency key is the
    top-up's, so a retry after a network error never charges twice. Success credits the
    ledger; a decline marks it failed, turns auto-recharge off and emails the owners.
    StripeUnavailable propagates: retry later."""
    topup = TopUp.objects.select_related("organization").get(pk=topup_id)
    if topup.status != TopUpStatus.PENDING:
        return topup
    profile = BillingProfile.objects.get(pk=topup.organization_id)
    try:
        payment = stripe_gateway.charge_off_session(
            customer_id=profile.stripe_customer_id,
            payment_method_id=profile.payment_method_id,
            amount_cents=usd_to_cents(topup.amount),
            currency=topup.currency,
            description=f"Tollgate auto-recharge for {topup.organization.name}",
            metadata=payment_metadata(topup, PURPOSE_AUTO_RECHARGE),
            idempotency_key=f"tollgate-topup-{topup.pk}-charge",
        )
    except stripe_gateway.PaymentDeclined as declined:
        _fail_recharge(topup, declined)
    except stripe_gateway.StripeRefused as refused:  # would fail again on every retry
        log.error("Stripe refused auto-recharge %d: %s", topup.pk, refused)
        _fail_recharge(
            topup,
            stripe_gateway.PaymentDeclined(
                code="refused", decline_code="", message=str(refused)[:500], payment_intent_id=""
            ),
        )
    else:
        _record_payment(topup, payment)
    topup.refresh_from_db()
    return topup


def apply_payment_intent_succeeded(intent: dict[str, Any]) -> None:
    """`payment_intent.succeeded`: finish an auto-recharge whose answer we missed (or that
    was still processing) and remember a card saved through Checkout."""
    metadata = intent.get("metadata") or {}
    if metadata.get("tollgate_purpose") == PURPOSE_AUTO_RECHARGE:
        topup = _recharge_of(metadata)
        if topup is None:
            raise EventDataError(f"{intent.get('id')} names an unknown auto-recharge")
        if intent.get("currency") != topup.currency or intent.get("amount_received") != (
            usd_to_cents(topup.amount)
        ):
            raise EventDataError(f"{intent.get('id')} does not match top-up {topup.pk}")
        _credit_recharge(topup, str(intent["id"]), int(intent["amount_received"]))
    else:
        remember_card(intent)


def _record_payment(topup: TopUp, payment: stripe_gateway.Payment) -> None:
    if payment.status == "succeeded":
        _credit_recharge(topup, payment.id, payment.amount_cents)
        return
    # Still processing: payment_intent.succeeded will credit it.
    TopUp.objects.filter(pk=topup.pk, stripe_payment_intent_id="").update(
        stripe_payment_intent_id=payment.id
    )


def _credit_recharge(topup: TopUp, payment_intent_id: str, amount_cents: int) -> None:
    credit_topup(
        topup,
        amount=cents_to_usd(amount_cents),
        idempotency_key=f"stripe:payment_intent:{payment_intent_id}",
        payment_intent_id=payment_intent_id,
        memo=f"Auto-recharge {payment_intent_id} (crossing {topup.crossing})",
    )


def _fail_recharge(topup: TopUp, declined: stripe_gateway.PaymentDeclined) -> None:
    """Record the decline, switch auto-recharge off and tell the owners (after commit)."""
    with transaction.atomic():
        profile = lock_profile(topup.organization_id)
        TopUp.objects.filter(pk=topup.pk, status=TopUpStatus.PENDING).update(
            status=TopUpStatus.FAILED,
            failure_code=declined.decline_code or declined.code,
            failure_message=declined.message,
            stripe_payment_intent_id=declined.payment_intent_id,
        )
        old = _recharge_values(profile)
        profile.auto_recharge_enabled = False
        prefix = "Stripe refused the charge" if declined.code == "refused" else "Card declined"
        profile.auto_recharge_disabled_reason = f"{prefix}: {declined.message}"
        profile.save(
            update_fields=[
                "auto_recharge_enabled",
                "auto_recharge_disabled_reason",
                "updated_at",
            ]
        )
        _audit(profile.organization, None, "auto_recharge.declined", old, _recharge_values(profile))
        after_commit(notifications.send_recharge_declined, topup.pk)


def _recharge_of(metadata: dict[str, Any]) -> TopUp | None:
    topup_id = str(metadata.get("tollgate_topup_id", ""))
    if not topup_id.isdigit():
        return None
    return (
        TopUp.objects.select_related("organization")
        .filter(pk=int(topup_id), source=TopUpSource.AUTO_RECHARGE)
        .first()
    )


def pending_recharges(older_than: timedelta) -> list[int]:
    """Ids of claimed recharges still pending after `older_than` (their charge failed to reach
    Stripe or its answer was lost): charging them again reuses their idempotency key."""
    cutoff = timezone.now() - older_than
    return list(
        TopUp.objects.filter(
            source=TopUpSource.AUTO_RECHARGE,
            status=TopUpStatus.PENDING,
            created_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )


def profiles_to_check() -> list[int]:
    """Organizations with auto-recharge on or a low-balance threshold set."""
    return list(
        BillingProfile.objects.filter(auto_recharge_enabled=True)
        .values_list("pk", flat=True)
        .union(
            BillingProfile.objects.filter(low_balance_threshold__isnull=False).values_list(
                "pk", flat=True
            )
        )
    )


# --- audit ------------------------------------------------------------------------------------


def _recharge_values(profile: BillingProfile) -> dict[str, Any]:
    return {
        "enabled": profile.auto_recharge_enabled,
        "threshold": _text(profile.auto_recharge_threshold),
        "amount": _text(profile.auto_recharge_amount),
    }


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")


def _audit(
    organization: Organization,
    actor: AbstractBaseUser | None,
    action: str,
    old: dict[str, Any],
    new: dict[str, Any],
) -> None:
    BillingChange.objects.create(
        organization=organization,
        actor=actor,
        actor_label=getattr(actor, "email", "") if actor else SYSTEM_ACTOR,
        action=action,
        old_values=old,
        new_values=new,
    )
