"""Finance in the admin: refunding a top-up through Stripe, retrying a failed Stripe event and
resolving an invoice discrepancy — each allowed to finance only, each audited, and a refund's
ledger debit posted exactly once whatever order Stripe's webhook arrives in."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.billing.models import (
    EventStatus,
    InvoiceDiscrepancy,
    PeriodClose,
    RefundStatus,
    StripeEvent,
    TopUp,
    TopUpRefund,
)
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.reconcile import reconcile_all
from apps.ledger.selectors import cached_balance, ledger_balance
from apps.ledger.services import grant_credits
from tests.admin.conftest import staff
from tests.billing.helpers import deliver_all, paid_checkout

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def topup(people, fake_stripe) -> TopUp:
    """Acme bought 25 USD of credits through Checkout; the webhooks were delivered."""
    deliver_all(paid_checkout(people, fake_stripe, "25.00"))
    topup = TopUp.objects.get(organization=people.acme)
    assert ledger_balance(people.acme) == Decimal(25)
    return topup


def refund_url(topup: TopUp) -> str:
    return reverse("admin:billing_topup_refund", args=[topup.pk])


def post_refund(client: Client, topup: TopUp, amount: str, key: str = "admin-refund:t1"):
    return client.post(
        refund_url(topup),
        {"amount": amount, "reason": "customer asked", "idempotency_key": key},
    )


def refund_entries(organization) -> list[tuple[Decimal, str]]:
    entries = LedgerEntry.objects.filter(organization=organization, kind=EntryKind.REFUND)
    return list(entries.order_by("pk").values_list("amount", "actor_label"))


def test_finance_refunds_part_of_a_top_up_to_the_card_once(people, fake_stripe, topup):
    fiona = staff("fiona@tollgate.example", "finance")
    client = logged_in(fiona)

    page = client.get(refund_url(topup))
    assert page.status_code == 200
    assert "25.0000000000 USD left to refund" in page.content.decode()

    response = post_refund(client, topup, "10.00")
    assert response.status_code == 302

    (call,) = fake_stripe.posts("/v1/refunds")
    assert call.params["payment_intent"] == topup.stripe_payment_intent_id
    assert call.params["amount"] == 1000
    refund = TopUpRefund.objects.get()
    assert (refund.status, refund.amount, refund.requested_by) == (
        RefundStatus.SUCCEEDED,
        Decimal("10.0000000000"),
        fiona,
    )
    assert refund.stripe_refund_id.startswith("re_")
    assert refund_entries(people.acme) == [(Decimal("-10.0000000000"), fiona.email)]
    assert ledger_balance(people.acme) == cached_balance(people.acme) == Decimal(15)
    audit = AuditEntry.objects.get(action="billing.refund_topup")
    assert (audit.actor, audit.reason) == (fiona, "customer asked")
    assert audit.before["balance"] == "25.0000000000"
    assert audit.after["balance"] == "15.0000000000"
    assert audit.after["stripe_refund"] == refund.stripe_refund_id

    # Stripe's webhook for the same refund, and the same form posted again: nothing more.
    deliver_all([fake_stripe.events[-1]])
    assert post_refund(client, topup, "10.00").status_code == 302
    assert len(fake_stripe.calls("/v1/refunds")) == 1
    assert refund_entries(people.acme) == [(Decimal("-10.0000000000"), fiona.email)]
    assert ledger_balance(people.acme) == Decimal(15)
    assert reconcile_all(recheck_delay_s=0) == []

    # A second refund takes what is left, and no more.
    assert post_refund(client, topup, "15.00", key="admin-refund:t2").status_code == 302
    assert ledger_balance(people.acme) == Decimal(0)
    assert "0.0000000000 USD left to refund" in client.get(refund_url(topup)).content.decode()
    refused = post_refund(client, topup, "0.01", key="admin-refund:t3")
    assert "At most 0.0000000000 USD of this top-up is left to refund" in refused.content.decode()
    assert [call.params["amount"] for call in fake_stripe.posts("/v1/refunds")] == [1000, 1500]


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("25.01", "At most 25.0000000000 USD of this top-up is left to refund"),
        ("1.005", "whole cents"),
        ("-5", "positive number of whole cents"),
    ],
)
def test_a_refund_the_rules_forbid_sends_nothing(people, fake_stripe, topup, amount, error):
    client = logged_in(staff("fiona@tollgate.example", "finance"))

    response = post_refund(client, topup, amount)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert fake_stripe.calls("/v1/refunds") == []
    assert not TopUpRefund.objects.exists()
    assert refund_entries(people.acme) == []


def test_a_refund_may_not_take_away_credit_already_spent(people, fake_stripe, topup):
    grant_credits(people.acme, Decimal(-20), reason="spent", idempotency_key="spent")
    client = logged_in(staff("fiona@tollgate.example", "finance"))

    response = post_refund(client, topup, "10.00")

    assert (
        "Acme has 5.0000000000 USD; taking 10.0000000000 USD would go below its floor of "
        "0.0000000000 USD. Refund less."
    ) in response.content.decode()
    assert fake_stripe.calls("/v1/refunds") == []
    assert ledger_balance(people.acme) == Decimal(5)


def test_only_staff_with_the_refund_permission_may_refund(people, fake_stripe, topup):
    sam = logged_in(staff("sam@tollgate.example", "support"))
    fiona = logged_in(staff("fiona@tollgate.example", "finance"))
    change_url = reverse("admin:billing_topup_change", args=[topup.pk])

    assert sam.get(refund_url(topup)).status_code == 403
    assert post_refund(sam, topup, "10.00").status_code == 403
    assert "Refund through Stripe" not in sam.get(change_url).content.decode()
    assert "Refund through Stripe" in fiona.get(change_url).content.decode()
    assert fake_stripe.calls("/v1/refunds") == []
    assert refund_entries(people.acme) == []


def test_stripe_unreachable_keeps_the_refund_requested_and_confirming_again_refunds_once(
    people, fake_stripe, topup
):
    client = logged_in(staff("fiona@tollgate.example", "finance"))
    fake_stripe.outages["/v1/refunds"] = 2  # the first try and the SDK's one retry

    response = post_refund(client, topup, "10.00")

    assert "Stripe could not be reached; nothing changed yet" in response.content.decode()
    assert TopUpRefund.objects.get().status == RefundStatus.REQUESTED
    assert refund_entries(people.acme) == []

    assert post_refund(client, topup, "10.00").status_code == 302
    assert len(fake_stripe.posts("/v1/refunds")) == 1
    assert TopUpRefund.objects.get().status == RefundStatus.SUCCEEDED
    assert ledger_balance(people.acme) == Decimal(15)


def test_a_refund_stripe_refuses_is_marked_failed_and_changes_nothing(people, fake_stripe, topup):
    charge_id = fake_stripe.charge_of(topup.stripe_payment_intent_id)
    from_the_dashboard = fake_stripe.refund(charge_id, 2000)  # not delivered to us yet
    client = logged_in(staff("fiona@tollgate.example", "finance"))

    response = post_refund(client, topup, "10.00")

    assert "Stripe refused the refund" in response.content.decode()
    assert [r.rsplit(":", 1)[0] for r in fake_stripe.refusals] == ["POST /v1/refunds"]
    fake_stripe.refusals.clear()
    assert TopUpRefund.objects.get().status == RefundStatus.FAILED
    assert refund_entries(people.acme) == []
    deliver_all([from_the_dashboard])
    assert refund_entries(people.acme) == [(Decimal("-20.0000000000"), "system:stripe")]


def test_retrying_a_failed_stripe_event_is_for_finance_and_is_audited(people, fake_stripe, topup):
    charge_id = fake_stripe.charge_of(topup.stripe_payment_intent_id)
    event = fake_stripe.refund(charge_id, 500)
    stored = StripeEvent.objects.create(
        event_id=event["id"],
        type=event["type"],
        payload=json.dumps(event),
        status=EventStatus.FAILED,
        error="database was down",
    )
    viewer = staff("vera@tollgate.example")
    viewer.user_permissions.add(Permission.objects.get(codename="view_stripeevent"))
    action = {"action": "retry_failed", "_selected_action": [stored.pk]}
    url = reverse("admin:billing_stripeevent_changelist")

    logged_in(viewer).post(url, action)
    stored.refresh_from_db()
    assert stored.status == EventStatus.FAILED
    assert not AuditEntry.objects.filter(action="billing.retry_stripe_event").exists()

    fiona = staff("fiona@tollgate.example", "finance")
    assert logged_in(fiona).post(url, action).status_code == 302
    stored.refresh_from_db()
    assert stored.status == EventStatus.PROCESSED
    assert refund_entries(people.acme) == [(Decimal("-5.0000000000"), "system:stripe")]
    audit = AuditEntry.objects.get(action="billing.retry_stripe_event")
    assert (audit.actor, audit.target_id, audit.after) == (
        fiona,
        str(stored.pk),
        {"status": EventStatus.PROCESSED},
    )


def test_resolving_a_discrepancy_is_for_finance_and_is_audited(people):
    moment = datetime(2026, 9, 1, tzinfo=UTC)
    close = PeriodClose.objects.create(
        organization=people.acme, period_start=moment, period_end=moment
    )
    discrepancy = InvoiceDiscrepancy.objects.create(
        period_close=close, check_name="lines", expected=Decimal(1), actual=Decimal(2)
    )
    action = {"action": "mark_resolved", "_selected_action": [discrepancy.pk]}
    url = reverse("admin:billing_invoicediscrepancy_changelist")

    assert logged_in(staff("sam@tollgate.example", "support")).post(url, action).status_code == 403
    fiona = staff("fiona@tollgate.example", "finance")
    assert logged_in(fiona).post(url, action).status_code == 302

    discrepancy.refresh_from_db()
    assert discrepancy.resolved
    audit = AuditEntry.objects.get(action="billing.resolve_discrepancy")
    assert (audit.actor, audit.before, audit.after) == (
        fiona,
        {"resolved": False},
        {"resolved": True},
    )
