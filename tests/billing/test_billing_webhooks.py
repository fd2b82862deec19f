"""POST /stripe/webhook: signed deliveries, exactly-once credits, refunds, disputes, ordering."""

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from apps.billing.models import BillingProfile, EventStatus, StripeEvent, TopUp, TopUpStatus
from apps.billing.tasks import sweep_stripe_events
from apps.billing.topups import start_checkout
from apps.billing.webhooks import apply_event
from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.selectors import cached_balance, ledger_balance
from tests.billing.helpers import (
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    completed,
    deliver,
    deliver_all,
    in_threads,
    paid_checkout,
    run_on_commit,
)
from tests.support.fake_stripe import sign


def topup_entries(people) -> list[tuple[str, Decimal]]:
    entries = LedgerEntry.objects.filter(organization=people.acme).exclude(kind=EntryKind.GRANT)
    return list(entries.order_by("pk").values_list("kind", "amount"))


def test_a_paid_checkout_credits_once_and_moves_the_hot_counter(people, fake_stripe):
    sync_redis().set(keyspace.credit_available(people.acme.pk), 0)  # the gateway seeded it
    events = paid_checkout(people, fake_stripe, "25.00")

    assert deliver_all(events) == [200, 200, 200]

    session = completed(events)["data"]["object"]
    (entry,) = LedgerEntry.objects.filter(organization=people.acme)
    assert (entry.kind, entry.amount) == (EntryKind.TOPUP, Decimal("25.0000000000"))
    assert entry.idempotency_key == f"stripe:checkout:{session['id']}"
    assert ledger_balance(people.acme) == cached_balance(people.acme) == Decimal("25")
    assert int(sync_redis().get(keyspace.credit_available(people.acme.pk))) == 25 * 10**10
    topup = TopUp.objects.get()
    assert (topup.status, topup.stripe_payment_intent_id) == (
        TopUpStatus.PAID,
        session["payment_intent"],
    )
    assert event_statuses() == {
        "payment_intent.succeeded": EventStatus.PROCESSED,
        "charge.succeeded": EventStatus.IGNORED,
        "checkout.session.completed": EventStatus.PROCESSED,
    }


def test_the_same_event_five_times_credits_once(people, fake_stripe):
    event = completed(paid_checkout(people, fake_stripe))

    assert deliver_all([event] * 5) == [200] * 5

    assert topup_entries(people) == [(EntryKind.TOPUP, Decimal("25.0000000000"))]
    assert StripeEvent.objects.count() == 1


def test_two_events_for_one_payment_credit_once(people, fake_stripe):
    event = completed(paid_checkout(people, fake_stripe))
    again = fake_stripe.event("checkout.session.async_payment_succeeded", event["data"]["object"])

    assert deliver_all([event, again]) == [200, 200]

    assert topup_entries(people) == [(EntryKind.TOPUP, Decimal("25.0000000000"))]


@pytest.mark.django_db(transaction=True)
def test_the_same_event_from_several_threads_at_once_credits_once(people, fake_stripe):
    sync_redis().set(keyspace.credit_available(people.acme.pk), 0)
    event = completed(paid_checkout(people, fake_stripe))

    statuses = in_threads(6, lambda _: deliver(Client(), event))

    assert statuses == [200] * 6
    assert topup_entries(people) == [(EntryKind.TOPUP, Decimal("25.0000000000"))]
    assert StripeEvent.objects.get().status == EventStatus.PROCESSED
    assert int(sync_redis().get(keyspace.credit_available(people.acme.pk))) == 25 * 10**10


def post_raw(body: bytes, header: str | None) -> int:
    extra = {} if header is None else {"HTTP_STRIPE_SIGNATURE": header}
    return (
        Client().post(WEBHOOK_URL, data=body, content_type="application/json", **extra).status_code
    )


def test_bad_missing_stale_or_tampered_signatures_get_400_and_change_nothing(people, fake_stripe):
    event = completed(paid_checkout(people, fake_stripe))
    body, header = sign(event, WEBHOOK_SECRET)
    _, wrong_secret = sign(event, "whsec_not_ours")
    _, stale = sign(event, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    tampered = body.replace(b'"amount_total": 2500', b'"amount_total": 250000')
    assert tampered != body

    assert post_raw(body, None) == 400
    assert post_raw(body, wrong_secret) == 400
    assert post_raw(body, stale) == 400
    assert post_raw(tampered, header) == 400
    assert post_raw(body, "t=1,v1=deadbeef") == 400
    assert post_raw(body, "garbage") == 400

    assert StripeEvent.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


def test_a_signed_body_that_is_not_an_event_gets_400(people, fake_stripe):
    body, header = sign({"object": "charge", "id": "ch_1"}, WEBHOOK_SECRET)
    assert post_raw(body, header) == 400
    assert StripeEvent.objects.count() == 0


def test_without_a_webhook_secret_every_delivery_gets_400(people, fake_stripe, settings):
    event = completed(paid_checkout(people, fake_stripe))
    body, header = sign(event, WEBHOOK_SECRET)
    settings.STRIPE_WEBHOOK_SECRET = ""

    assert post_raw(body, header) == 400
    assert StripeEvent.objects.count() == 0


def test_unhandled_events_get_200_and_are_recorded(people, fake_stripe):
    event = fake_stripe.event("customer.updated", {"id": "cus_x", "object": "customer"})

    assert deliver_all([event]) == [200]

    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type, stored.status) == (
        event["id"],
        "customer.updated",
        EventStatus.IGNORED,
    )
    assert json.loads(stored.payload) == event


def test_a_refund_is_a_negative_entry(people, fake_stripe):
    events = paid_checkout(people, fake_stripe, "25.00")
    charge_id = fake_stripe.charge_of(completed(events)["data"]["object"]["payment_intent"])

    deliver_all([*events, fake_stripe.refund(charge_id, 1000)])

    assert topup_entries(people) == [
        (EntryKind.TOPUP, Decimal("25.0000000000")),
        (EntryKind.REFUND, Decimal("-10.0000000000")),
    ]
    assert ledger_balance(people.acme) == Decimal("15")


def test_partial_refunds_in_any_order_add_up_to_the_final_refund(people, fake_stripe):
    events = paid_checkout(people, fake_stripe, "25.00")
    charge_id = fake_stripe.charge_of(completed(events)["data"]["object"]["payment_intent"])
    first = fake_stripe.refund(charge_id, 500)
    second = fake_stripe.refund(charge_id, 700)

    deliver_all([*events, second, first, second])

    refunds = LedgerEntry.objects.filter(kind=EntryKind.REFUND)
    assert sum(refunds.values_list("amount", flat=True)) == Decimal("-12")
    assert ledger_balance(people.acme) == Decimal("13")


def test_refund_before_the_payment_event_still_nets_out(people, fake_stripe):
    events = paid_checkout(people, fake_stripe, "25.00")
    charge_id = fake_stripe.charge_of(completed(events)["data"]["object"]["payment_intent"])
    refund = fake_stripe.refund(charge_id, 2500)

    deliver_all([refund, *reversed(events)])

    assert sorted(topup_entries(people)) == [
        (EntryKind.REFUND, Decimal("-25.0000000000")),
        (EntryKind.TOPUP, Decimal("25.0000000000")),
    ]
    assert ledger_balance(people.acme) == Decimal(0)


def test_a_lost_dispute_is_a_negative_entry_and_a_won_one_is_nothing(people, fake_stripe):
    events = paid_checkout(people, fake_stripe, "25.00")
    charge_id = fake_stripe.charge_of(completed(events)["data"]["object"]["payment_intent"])
    won = fake_stripe.close_dispute(charge_id, "won")
    lost = fake_stripe.close_dispute(charge_id, "lost")

    deliver_all([*events, won, lost, lost])

    assert topup_entries(people) == [
        (EntryKind.TOPUP, Decimal("25.0000000000")),
        (EntryKind.DISPUTE, Decimal("-25.0000000000")),
    ]


def test_a_dispute_before_its_payment_waits_and_applies_later(people, fake_stripe, held_events):
    events = paid_checkout(people, fake_stripe, "25.00")
    charge_id = fake_stripe.charge_of(completed(events)["data"]["object"]["payment_intent"])
    lost = fake_stripe.close_dispute(charge_id, "lost")

    deliver_all([lost])
    dispute_event = StripeEvent.objects.get(event_id=lost["id"])
    assert apply_event(dispute_event.pk) == EventStatus.RECEIVED  # not ready: retried later
    deliver_all([completed(events)])
    for pk in held_events[1:]:
        apply_event(pk)
    assert apply_event(dispute_event.pk) == EventStatus.PROCESSED

    assert ledger_balance(people.acme) == Decimal(0)
    dispute_event.refresh_from_db()
    assert (dispute_event.attempts, dispute_event.error) == (2, "")


def test_an_event_not_ready_for_too_long_fails_with_its_reason(
    people, fake_stripe, held_events, settings
):
    settings.STRIPE_EVENT_MAX_ATTEMPTS = 2
    events = paid_checkout(people, fake_stripe)
    charge_id = fake_stripe.charge_of(completed(events)["data"]["object"]["payment_intent"])
    deliver_all([fake_stripe.close_dispute(charge_id, "lost")])
    (pk,) = held_events

    assert [apply_event(pk), apply_event(pk), apply_event(pk)] == ["received", "failed", "failed"]
    assert "no organization known" in StripeEvent.objects.get(pk=pk).error


def test_a_payment_that_disagrees_with_its_top_up_fails_without_credit(people, fake_stripe):
    event = completed(paid_checkout(people, fake_stripe, "25.00"))
    event["data"]["object"]["amount_total"] = 2600

    assert deliver_all([event]) == [200]

    stored = StripeEvent.objects.get()
    assert stored.status == EventStatus.FAILED
    assert "paid 2600 cents" in stored.error
    assert LedgerEntry.objects.count() == 0


def test_saving_the_card_at_checkout_keeps_its_payment_method(people, fake_stripe):
    events = paid_checkout(people, fake_stripe, save_card=True)

    deliver_all(events)

    intent = events[0]["data"]["object"]
    profile = BillingProfile.objects.get(pk=people.acme.pk)
    assert profile.payment_method_id == intent["payment_method"]
    assert profile.has_card


def test_a_card_not_saved_is_not_kept(people, fake_stripe):
    deliver_all(paid_checkout(people, fake_stripe, save_card=False))

    assert BillingProfile.objects.get(pk=people.acme.pk).payment_method_id == ""


def test_an_expired_checkout_marks_the_top_up_failed(people, fake_stripe):
    topup, _ = start_checkout(
        people.acme,
        Decimal("25"),
        requested_by=None,
        save_card=False,
        success_url="https://t.example/ok",
        cancel_url="https://t.example/no",
    )
    session = fake_stripe.sessions[topup.stripe_checkout_session_id]
    expired = fake_stripe.event("checkout.session.expired", {**session, "status": "expired"})

    deliver_all([expired])

    assert TopUp.objects.get().status == TopUpStatus.FAILED
    assert LedgerEntry.objects.count() == 0


def event_statuses() -> dict[str, str]:
    return dict(StripeEvent.objects.values_list("type", "status"))


def test_the_sweep_applies_an_event_whose_task_was_lost(people, fake_stripe, held_events):
    event = completed(paid_checkout(people, fake_stripe))
    deliver_all([event])  # stored; its task never ran
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(minutes=11))

    with run_on_commit():
        swept = sweep_stripe_events()

    assert swept == 1
    assert StripeEvent.objects.get().status == EventStatus.PROCESSED
    assert topup_entries(people) == [(EntryKind.TOPUP, Decimal("25.0000000000"))]
