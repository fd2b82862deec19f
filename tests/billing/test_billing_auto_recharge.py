"""Auto-recharge (saved card, off-session) and low-balance emails: once per crossing."""

from decimal import Decimal

import pytest

from apps.billing.auto_recharge import (
    check_and_recharge,
    configure_auto_recharge,
    configure_low_balance,
)
from apps.billing.errors import BillingRefused
from apps.billing.models import BillingChange, BillingProfile, TopUp, TopUpSource, TopUpStatus
from apps.billing.profiles import get_profile
from apps.billing.tasks import check_balances
from apps.billing.topups import start_checkout
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.selectors import ledger_balance
from apps.ledger.services import grant_credits
from tests.billing.helpers import deliver_all, in_threads, run_on_commit


def save_card(people, fake_stripe, *, declines_later: bool = False) -> None:
    """Alice buys 25 USD with "save this card" ticked; Stripe's events are delivered."""
    topup, _ = start_checkout(
        people.acme,
        Decimal("25"),
        requested_by=people.alice,
        save_card=True,
        success_url="https://t.example/ok",
        cancel_url="https://t.example/no",
    )
    events = fake_stripe.complete_checkout(
        topup.stripe_checkout_session_id, declines_later=declines_later
    )
    assert deliver_all(events) == [200, 200, 200]


def spend(people, amount: str) -> None:
    grant_credits(people.acme, -Decimal(amount), reason="spent", actor_label="test")


def turn_on(people, threshold: str = "20", amount: str = "50") -> None:
    configure_auto_recharge(
        people.acme,
        enabled=True,
        threshold=Decimal(threshold),
        amount=Decimal(amount),
        actor=people.alice,
    )


def recharges(people) -> list[tuple[int, str]]:
    topups = TopUp.objects.filter(organization=people.acme, source=TopUpSource.AUTO_RECHARGE)
    return list(topups.order_by("crossing").values_list("crossing", "status"))


def check(people):
    with run_on_commit():
        return check_and_recharge(people.acme.pk)


def test_the_off_session_payment_intent_is_what_stripe_expects(people, fake_stripe):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    spend(people, "10")

    check(people)

    (request,) = fake_stripe.posts("/v1/payment_intents")
    topup = TopUp.objects.get(source=TopUpSource.AUTO_RECHARGE)
    profile = BillingProfile.objects.get(pk=people.acme.pk)
    assert request.params == {
        "amount": 5000,
        "currency": "usd",
        "customer": profile.stripe_customer_id,
        "payment_method": profile.payment_method_id,
        "off_session": True,
        "confirm": True,
        "description": "Tollgate auto-recharge for Acme",
        "metadata": {
            "tollgate_org_id": str(people.acme.pk),
            "tollgate_topup_id": str(topup.pk),
            "tollgate_purpose": "auto_recharge",
            "tollgate_save_card": "0",
        },
    }
    assert request.idempotency_key == f"tollgate-topup-{topup.pk}-charge"
    assert topup.status == TopUpStatus.PAID
    (entry,) = LedgerEntry.objects.filter(idempotency_key__startswith="stripe:payment_intent:")
    assert (entry.kind, entry.amount) == (EntryKind.TOPUP, Decimal("50.0000000000"))
    assert ledger_balance(people.acme) == Decimal("65")


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_charge_once_per_crossing(people, fake_stripe):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    spend(people, "10")  # 25 → 15: one crossing

    in_threads(2, lambda _: check_and_recharge(people.acme.pk))
    in_threads(2, lambda _: check_and_recharge(people.acme.pk))

    assert len(fake_stripe.posts("/v1/payment_intents")) == 1
    assert recharges(people) == [(1, TopUpStatus.PAID)]
    assert ledger_balance(people.acme) == Decimal("65")


@pytest.mark.django_db(transaction=True)
def test_many_workers_through_the_beat_task_charge_once(people, fake_stripe):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    spend(people, "10")

    in_threads(4, lambda _: check_balances())

    assert len(fake_stripe.posts("/v1/payment_intents")) == 1
    assert ledger_balance(people.acme) == Decimal("65")


def test_a_new_crossing_after_recovery_charges_again(people, fake_stripe):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    spend(people, "10")  # 15: crossing 1 → 65
    check(people)
    check(people)  # at 65: re-armed
    spend(people, "50")  # 15: crossing 2 → 65

    check(people)
    check(people)

    assert recharges(people) == [(1, TopUpStatus.PAID), (2, TopUpStatus.PAID)]
    assert ledger_balance(people.acme) == Decimal("65")


def test_a_recharge_that_stays_below_the_threshold_is_not_repeated(people, fake_stripe):
    save_card(people, fake_stripe)
    turn_on(people, "40", "5")  # 25 is already below 40: one crossing

    for _ in range(3):
        check(people)

    assert recharges(people) == [(1, TopUpStatus.PAID)]
    assert ledger_balance(people.acme) == Decimal("30")


def test_the_hourly_cap_holds_back_a_burst(people, fake_stripe, settings):
    settings.AUTO_RECHARGE_MAX_PER_HOUR = 1
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    spend(people, "10")
    check(people)
    check(people)  # re-armed at 65
    spend(people, "50")

    check(people)

    assert recharges(people) == [(1, TopUpStatus.PAID)]
    assert BillingProfile.objects.get(pk=people.acme.pk).auto_recharge_armed  # waits its turn


def test_a_decline_turns_auto_recharge_off_and_emails_the_owner(people, fake_stripe, mailoutbox):
    save_card(people, fake_stripe, declines_later=True)
    turn_on(people, "20", "50")
    spend(people, "10")

    check(people)

    assert recharges(people) == [(1, TopUpStatus.FAILED)]
    topup = TopUp.objects.get(source=TopUpSource.AUTO_RECHARGE)
    assert (topup.failure_code, topup.failure_message) == (
        "insufficient_funds",
        "Your card has insufficient funds.",
    )
    assert topup.stripe_payment_intent_id in fake_stripe.payment_intents
    profile = BillingProfile.objects.get(pk=people.acme.pk)
    assert not profile.auto_recharge_enabled
    assert profile.auto_recharge_disabled_reason == (
        "Card declined: Your card has insufficient funds."
    )
    assert ledger_balance(people.acme) == Decimal("15")
    (mail,) = mailoutbox
    assert mail.to == ["alice@acme.example"]
    assert mail.subject == "Auto-recharge declined: Acme"
    assert "50.00 USD" in mail.body
    assert "insufficient funds" in mail.body
    assert BillingChange.objects.filter(action="auto_recharge.declined").count() == 1

    check(people)  # off now: nothing more is tried
    assert [call.status for call in fake_stripe.calls("/v1/payment_intents")] == [402]


def test_a_missed_answer_is_finished_by_the_payment_intent_event(people, fake_stripe):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    spend(people, "10")
    check(people)
    (event,) = [
        e
        for e in fake_stripe.events
        if e["type"] == "payment_intent.succeeded"
        and e["data"]["object"]["metadata"].get("tollgate_purpose") == "auto_recharge"
    ]

    assert deliver_all([event, event]) == [200, 200]

    assert ledger_balance(people.acme) == Decimal("65")


def test_turning_it_on_needs_a_saved_card(people, fake_stripe):
    with pytest.raises(BillingRefused, match="Save a card first"):
        turn_on(people)

    assert not get_profile(people.acme.pk).auto_recharge_enabled


def test_the_recharge_amount_must_be_within_the_top_up_limits(people, fake_stripe):
    save_card(people, fake_stripe)
    with pytest.raises(BillingRefused):
        turn_on(people, "20", "1")


def test_settings_changes_are_audited(people, fake_stripe):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")

    change = BillingChange.objects.get(action="auto_recharge.configure")
    assert change.actor == people.alice
    assert change.old_values == {
        "enabled": False,
        "threshold": "0.0000000000",
        "amount": "0.0000000000",
    }
    assert change.new_values == {
        "enabled": True,
        "threshold": "20.0000000000",
        "amount": "50.0000000000",
    }


# --- low balance ------------------------------------------------------------------------------


def test_low_balance_emails_once_per_crossing(people, mailoutbox):
    grant_credits(people.acme, Decimal("30"), reason="start")
    configure_low_balance(people.acme, threshold=Decimal("10"), actor=people.alice)

    check(people)  # 30: nothing
    spend(people, "25")  # 5: crossing
    check(people)
    check(people)
    grant_credits(people.acme, Decimal("20"), reason="top-up")  # 25: re-armed
    check(people)
    spend(people, "20")  # 5: crossing again
    check(people)

    assert [mail.subject for mail in mailoutbox] == ["Low balance: Acme", "Low balance: Acme"]
    assert mailoutbox[0].to == ["alice@acme.example"]
    assert "5.00 USD" in mailoutbox[0].body
    assert "10.00 USD" in mailoutbox[0].body


def test_without_a_threshold_no_email_is_sent(people, mailoutbox):
    grant_credits(people.acme, Decimal("1"), reason="start")
    configure_low_balance(people.acme, threshold=None, actor=people.alice)

    check(people)

    assert mailoutbox == []


def test_a_charge_stripe_refuses_turns_auto_recharge_off(people, fake_stripe, mailoutbox):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    BillingProfile.objects.filter(pk=people.acme.pk).update(payment_method_id="pm_detached")
    spend(people, "10")

    check(people)

    assert recharges(people) == [(1, TopUpStatus.FAILED)]
    profile = BillingProfile.objects.get(pk=people.acme.pk)
    assert not profile.auto_recharge_enabled
    assert profile.auto_recharge_disabled_reason.startswith("Stripe refused the charge: ")
    assert len(mailoutbox) == 1
    assert len(fake_stripe.refusals) == 1
    fake_stripe.refusals.clear()


def test_without_stripe_keys_nothing_is_claimed(people, fake_stripe, settings):
    save_card(people, fake_stripe)
    turn_on(people, "20", "50")
    spend(people, "10")
    settings.STRIPE_SECRET_KEY = ""

    check(people)

    assert recharges(people) == []
    assert BillingProfile.objects.get(pk=people.acme.pk).auto_recharge_armed
