"""The fake Stripe itself: it accepts only what Stripe accepts, refuses loudly what it does not
know, honours idempotency keys and answers in Stripe's shapes."""

import re
import sys
import time
from typing import Any

import pytest
import stripe
from stripe.params import (
    CustomerCreateParams,
    InvoiceCreateParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceItemCreateParams,
    InvoiceSendInvoiceParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
)
from stripe.params.checkout import SessionCreateParams

from tests.support.fake_stripe import ENDPOINTS, METADATA, FakeStripe, load_fixtures, sign

SDK_PARAMS = {
    "/v1/customers": CustomerCreateParams,
    "/v1/checkout/sessions": SessionCreateParams,
    "/v1/payment_intents": PaymentIntentCreateParams,
    "/v1/refunds": RefundCreateParams,
    "/v1/invoices": InvoiceCreateParams,
    "/v1/invoiceitems": InvoiceItemCreateParams,
    "/v1/invoices/{id}/finalize": InvoiceFinalizeInvoiceParams,
    "/v1/invoices/{id}/send": InvoiceSendInvoiceParams,
}


def sdk_names(typed_dict: type, schema: dict, prefix: str = "") -> list[str]:
    """Parameters of `schema` that the SDK's TypedDict (Stripe's own spec) does not have."""
    unknown = []
    module = sys.modules[typed_dict.__module__]
    for name, kind in schema.items():
        annotation = typed_dict.__annotations__.get(name)
        if annotation is None:
            unknown.append(f"{prefix}{name}")
            continue
        nested = kind[0] if isinstance(kind, list) else kind
        if isinstance(nested, dict):
            (class_name,) = re.findall(r"'(\w+)'", repr(annotation))
            unknown += sdk_names(getattr(module, class_name), nested, f"{prefix}{name}.")
        elif nested == METADATA:
            assert "Dict[str, str]" in repr(annotation)
    return unknown


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.pattern)
def test_every_parameter_the_fake_knows_is_one_stripe_knows(endpoint):
    assert sdk_names(SDK_PARAMS[endpoint.pattern], endpoint.schema) == []


@pytest.fixture
def client(fake_stripe) -> stripe.StripeClient:
    from django.conf import settings

    return stripe.StripeClient(
        fake_stripe.api_key,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=0,
    )


def options(key: str) -> dict[str, Any]:
    return {"idempotency_key": key}


def test_unknown_parameters_are_refused_loudly(fake_stripe, client):
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: nickname"):
        client.v1.customers.create({"name": "x", "nickname": "y"}, options("tollgate-1"))  # type: ignore[typeddict-unknown-key]
    customer = client.v1.customers.create({"name": "x"}, options("tollgate-2"))
    with pytest.raises(stripe.InvalidRequestError, match=r"payment_intent_data\[capture_method\]"):
        client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "customer": customer.id,
                "success_url": "https://t.example",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 500,
                            "product_data": {"name": "credits"},
                        },
                    }
                ],
                "payment_intent_data": {"capture_method": "manual"},
            },
            options("tollgate-3"),
        )

    assert len(fake_stripe.refusals) == 2
    assert fake_stripe.customers.keys() == {customer.id}
    fake_stripe.refusals.clear()


def test_missing_and_mistyped_parameters_are_refused(fake_stripe, client):
    with pytest.raises(stripe.InvalidRequestError, match="Missing required param: currency"):
        client.v1.payment_intents.create({"amount": 100}, options("tollgate-1"))  # type: ignore[typeddict-item]
    with pytest.raises(stripe.InvalidRequestError, match="Invalid integer"):
        client.raw_request(
            "post",
            "/v1/payment_intents",
            amount="ten",
            currency="usd",
            idempotency_key="tollgate-2",
        )
    fake_stripe.refusals.clear()


def test_the_same_key_replays_the_first_answer_and_does_nothing_again(fake_stripe, client):
    first = client.v1.customers.create({"name": "Acme"}, options("tollgate-customer-1"))
    again = client.v1.customers.create({"name": "Acme"}, options("tollgate-customer-1"))

    assert again.id == first.id
    assert len(fake_stripe.customers) == 1
    assert [r.replayed for r in fake_stripe.requests] == [False, True]


def test_the_same_key_with_other_parameters_is_an_idempotency_error(fake_stripe, client):
    client.v1.customers.create({"name": "Acme"}, options("tollgate-customer-1"))

    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"name": "Globex"}, options("tollgate-customer-1"))

    assert len(fake_stripe.customers) == 1
    fake_stripe.refusals.clear()


def test_a_key_the_sdk_invented_is_refused(fake_stripe, client):
    with pytest.raises(stripe.InvalidRequestError, match="not chosen by the platform"):
        client.v1.customers.create({"name": "Acme"})
    fake_stripe.refusals.clear()


def test_unknown_endpoints_and_keys_are_refused(fake_stripe, client):
    with pytest.raises(stripe.InvalidRequestError, match="Unrecognized request URL"):
        client.v1.payouts.create({"amount": 100, "currency": "usd"}, options("tollgate-1"))
    bad_key = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": client._requestor.base_addresses["api"]}
    )
    with pytest.raises(stripe.AuthenticationError):
        bad_key.v1.customers.create({"name": "x"}, options("tollgate-2"))


def test_objects_have_the_shapes_of_stripes_fixtures(fake_stripe, client):
    fixtures = load_fixtures()
    customer = client.v1.customers.create({"name": "Acme"}, options("tollgate-1"))
    invoice = client.v1.invoices.create({"customer": customer.id}, options("tollgate-2"))
    events = []
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer": customer.id,
            "success_url": "https://t.example",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 500,
                        "product_data": {"name": "credits"},
                    },
                }
            ],
        },
        options("tollgate-3"),
    )
    events = fake_stripe.complete_checkout(session.id)

    assert customer.to_dict().keys() == fixtures["customer"].keys()
    assert invoice.to_dict().keys() == fixtures["invoice"].keys()
    assert session.to_dict().keys() == fixtures["checkout.session"].keys()
    for event in events:
        assert event.keys() == fixtures["event"].keys()
    kinds = {
        "payment_intent": "payment_intent",
        "charge": "charge",
        "checkout.session": "checkout.session",
    }
    for event in events:
        data = event["data"]["object"]
        assert data.keys() == fixtures[kinds[data["object"]]].keys()


def test_signatures_verify_with_the_sdk(fake_stripe):
    body, header = sign({"id": "evt_1", "object": "event"}, "whsec_x")
    assert stripe.WebhookSignature.verify_header(body, header, "whsec_x", 300)
    _, old = sign({"id": "evt_1"}, "whsec_x", timestamp=int(time.time()) - 600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, old, "whsec_x", 300)


def test_a_declined_card_answers_402_with_the_payment_intent(fake_stripe: FakeStripe, client):
    customer = client.v1.customers.create({"name": "Acme"}, options("tollgate-1"))
    method = fake_stripe._payment_method(customer.id)
    fake_stripe.declining_methods.add(method["id"])
    params = {
        "amount": 1000,
        "currency": "usd",
        "customer": customer.id,
        "payment_method": method["id"],
        "off_session": True,
        "confirm": True,
    }

    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params, options("tollgate-2"))  # type: ignore[arg-type]
    with pytest.raises(stripe.CardError):  # replayed, not charged again
        client.v1.payment_intents.create(params, options("tollgate-2"))  # type: ignore[arg-type]

    assert declined.value.code == "card_declined"
    assert (
        declined.value.json_body["error"]["payment_intent"]["status"] == "requires_payment_method"
    )
    assert len(fake_stripe.payment_intents) == 1
