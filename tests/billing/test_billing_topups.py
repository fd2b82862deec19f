"""Buying credits: the Stripe customer and the Checkout Session, through the fake Stripe."""

from decimal import Decimal

import pytest

from apps.billing.errors import BillingNotConfigured, BillingRefused
from apps.billing.models import BillingProfile, TopUp, TopUpSource, TopUpStatus
from apps.billing.stripe_gateway import StripeUnavailable
from apps.billing.topups import start_checkout
from tests.billing.helpers import in_threads

SUCCESS = "https://tollgate.example/billing/done?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://tollgate.example/billing/buy"


def buy(people, amount: str = "25.00", *, save_card: bool = False):
    return start_checkout(
        people.acme,
        Decimal(amount),
        requested_by=people.alice,
        save_card=save_card,
        success_url=SUCCESS,
        cancel_url=CANCEL,
    )


def test_first_purchase_creates_the_customer_and_later_ones_reuse_it(people, fake_stripe):
    buy(people)
    buy(people, "10.00")

    assert len(fake_stripe.customers) == 1
    (customer,) = fake_stripe.customers.values()
    assert BillingProfile.objects.get(pk=people.acme.pk).stripe_customer_id == customer["id"]
    assert customer["name"] == "Acme"
    assert customer["email"] == "alice@acme.example"
    assert customer["metadata"] == {"tollgate_org_id": str(people.acme.pk)}
    (create,) = fake_stripe.posts("/v1/customers")
    assert create.idempotency_key == f"tollgate-customer-{people.acme.pk}"
    sessions = list(fake_stripe.sessions.values())
    assert [session["customer"] for session in sessions] == [customer["id"], customer["id"]]


def test_checkout_session_has_the_amount_currency_customer_and_metadata(people, fake_stripe):
    topup, url = buy(people, "25.00")

    (request,) = fake_stripe.posts("/v1/checkout/sessions")
    customer_id = BillingProfile.objects.get(pk=people.acme.pk).stripe_customer_id
    metadata = {
        "tollgate_org_id": str(people.acme.pk),
        "tollgate_topup_id": str(topup.pk),
        "tollgate_purpose": "topup",
        "tollgate_save_card": "0",
    }
    assert request.params == {
        "mode": "payment",
        "customer": customer_id,
        "client_reference_id": str(topup.pk),
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 2500,
                    "product_data": {"name": "Tollgate credits for Acme"},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
    }
    assert request.idempotency_key == f"tollgate-topup-{topup.pk}-checkout"
    session = fake_stripe.sessions[topup.stripe_checkout_session_id]
    assert url == session["url"]
    assert (session["amount_total"], session["currency"]) == (2500, "usd")
    stored = TopUp.objects.get(pk=topup.pk)
    assert (stored.amount, stored.currency, stored.status, stored.source) == (
        Decimal("25.0000000000"),
        "usd",
        TopUpStatus.PENDING,
        TopUpSource.CHECKOUT,
    )


def test_saving_the_card_asks_checkout_for_off_session_use(people, fake_stripe):
    buy(people, save_card=True)

    (request,) = fake_stripe.posts("/v1/checkout/sessions")
    assert request.params["payment_intent_data"]["setup_future_usage"] == "off_session"
    assert request.params["metadata"]["tollgate_save_card"] == "1"


@pytest.mark.parametrize("amount", ["4.99", "10000.01", "12.345"])
def test_amounts_outside_the_limits_or_below_a_cent_are_refused(people, fake_stripe, amount):
    with pytest.raises(BillingRefused):
        buy(people, amount)

    assert fake_stripe.requests == []
    assert TopUp.objects.count() == 0


def test_limits_come_from_settings(people, fake_stripe, settings):
    settings.TOPUP_MIN_USD = "50"
    with pytest.raises(BillingRefused, match="between 50"):
        buy(people, "25.00")


def test_without_stripe_keys_nothing_is_attempted(people, no_stripe):
    with pytest.raises(BillingNotConfigured) as refused:
        buy(people)

    assert refused.value.missing == ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"]
    assert TopUp.objects.count() == 0


def test_a_stripe_outage_is_retried_with_the_same_key(people, fake_stripe):
    fake_stripe.fail_next.append(500)

    buy(people)

    attempts = [r for r in fake_stripe.requests if r.path == "/v1/customers"]
    assert [a.status for a in attempts] == [500, 200]
    assert {a.idempotency_key for a in attempts} == {f"tollgate-customer-{people.acme.pk}"}
    assert len(fake_stripe.customers) == 1


def test_a_long_outage_raises_unavailable_and_charges_nothing(people, fake_stripe):
    fake_stripe.fail_next.extend([500, 500])

    with pytest.raises(StripeUnavailable):
        buy(people)

    assert fake_stripe.customers == {}
    assert fake_stripe.sessions == {}


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_purchases_create_one_customer(people, fake_stripe):
    in_threads(4, lambda _: buy(people))

    assert len(fake_stripe.customers) == 1
    assert len(fake_stripe.sessions) == 4
    assert len({s["customer"] for s in fake_stripe.sessions.values()}) == 1
