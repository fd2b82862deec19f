"""Every call Tollgate makes to Stripe, and the webhook signature check. Nothing else in the
platform imports the `stripe` SDK.

Each call sends an explicit idempotency key (a retry, by the SDK or by us, returns Stripe's
first answer instead of doing the thing twice) and runs under explicit connect and read
timeouts. Amounts are integer cents of the billing currency. Errors come back as:

- `PaymentDeclined`: the card was refused (not retried; the caller decides what it means);
- `StripeUnavailable`: network trouble, rate limit or a 5xx (retry later with the same key);
- `StripeRefused`: any other 4xx: our request was wrong (never retried: it would fail again).
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import stripe

from apps.billing.conf import int_setting, seconds_setting, text_setting


class StripeNotConfigured(RuntimeError):
    """STRIPE_SECRET_KEY is empty."""


class StripeUnavailable(RuntimeError):
    """Stripe could not be reached or failed (network, 429, 5xx): retry with the same key."""


class StripeRefused(RuntimeError):
    """Stripe refused the request (a 4xx other than a declined card)."""


class InvalidWebhook(ValueError):
    """A webhook whose signature, timestamp or body does not check out."""


class PaymentDeclined(Exception):
    """The card was declined (or needs the customer present to authenticate)."""

    def __init__(self, *, code: str, decline_code: str, message: str, payment_intent_id: str):
        super().__init__(f"{code} ({decline_code}): {message}")
        self.code = code
        self.decline_code = decline_code
        self.message = message
        self.payment_intent_id = payment_intent_id


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True, slots=True)
class Payment:
    """An off-session PaymentIntent after confirmation."""

    id: str
    status: str  # "succeeded" when the money is ours
    amount_cents: int


@dataclass(frozen=True, slots=True)
class StripeRefund:
    """A refund as Stripe created it, with its charge as it stands after the refund."""

    id: str
    status: str  # "succeeded", "pending" (the bank has not confirmed yet) or "failed"
    amount_cents: int
    charge: dict[str, Any]  # includes the cumulative `amount_refunded`


@dataclass(frozen=True, slots=True)
class StripeInvoice:
    id: str
    status: str
    hosted_invoice_url: str


def create_customer(*, organization_id: int, name: str, email: str, idempotency_key: str) -> str:
    """A new Stripe customer for the organization; its id."""
    params: dict[str, Any] = {"name": name, "metadata": {"tollgate_org_id": str(organization_id)}}
    if email:
        params["email"] = email
    customer = _call(lambda c: c.v1.customers.create(params, _options(idempotency_key)))
    return str(customer.id)


def create_checkout_session(
    *,
    customer_id: str,
    amount_cents: int,
    currency: str,
    product_name: str,
    metadata: dict[str, str],
    save_card: bool,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> CheckoutSession:
    """A one-time Checkout payment of `amount_cents`; with `save_card`, the card is kept on the
    customer for later off-session charges (auto-recharge)."""
    payment_intent_data: dict[str, Any] = {"metadata": metadata}
    if save_card:
        payment_intent_data["setup_future_usage"] = "off_session"
    params: dict[str, Any] = {
        "mode": "payment",
        "customer": customer_id,
        "client_reference_id": metadata.get("tollgate_topup_id", ""),
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount_cents,
                    "product_data": {"name": product_name},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": payment_intent_data,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    session = _call(lambda c: c.v1.checkout.sessions.create(params, _options(idempotency_key)))
    return CheckoutSession(id=str(session.id), url=str(session.url))


def charge_off_session(
    *,
    customer_id: str,
    payment_method_id: str,
    amount_cents: int,
    currency: str,
    description: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> Payment:
    """Charge the saved card now, without the customer (confirm at once, off-session).
    Raises PaymentDeclined when the card is refused or would need the customer."""
    params: dict[str, Any] = {
        "amount": amount_cents,
        "currency": currency,
        "customer": customer_id,
        "payment_method": payment_method_id,
        "off_session": True,
        "confirm": True,
        "description": description,
        "metadata": metadata,
    }
    intent = _call(lambda c: c.v1.payment_intents.create(params, _options(idempotency_key)))
    return Payment(id=str(intent.id), status=str(intent.status), amount_cents=int(intent.amount))


def refund_payment(
    *, payment_intent_id: str, amount_cents: int, metadata: dict[str, str], idempotency_key: str
) -> StripeRefund:
    """Give `amount_cents` of a succeeded payment back to the card it came from."""
    params: dict[str, Any] = {
        "payment_intent": payment_intent_id,
        "amount": amount_cents,
        "reason": "requested_by_customer",
        "metadata": metadata,
        "expand": ["charge"],
    }
    refund = _call(lambda c: c.v1.refunds.create(params, _options(idempotency_key)))
    return StripeRefund(
        id=str(refund.id),
        status=str(refund.status),
        amount_cents=int(refund.amount),
        charge=refund.charge.to_dict(recursive=True),
    )


def create_invoice(
    *,
    customer_id: str,
    currency: str,
    description: str,
    metadata: dict[str, str],
    days_until_due: int,
    idempotency_key: str,
) -> str:
    """An empty draft invoice that Stripe will email (collection by invoice, not by card on
    file); pending invoice items of the customer are left out. Its id."""
    params: dict[str, Any] = {
        "customer": customer_id,
        "currency": currency,
        "collection_method": "send_invoice",
        "days_until_due": days_until_due,
        "auto_advance": False,
        "pending_invoice_items_behavior": "exclude",
        "description": description,
        "metadata": metadata,
    }
    invoice = _call(lambda c: c.v1.invoices.create(params, _options(idempotency_key)))
    return str(invoice.id)


def add_invoice_item(
    *,
    customer_id: str,
    invoice_id: str,
    amount_cents: int,
    currency: str,
    description: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> str:
    """One line of `amount_cents` on the draft invoice; its id."""
    params: dict[str, Any] = {
        "customer": customer_id,
        "invoice": invoice_id,
        "amount": amount_cents,
        "currency": currency,
        "description": description,
        "metadata": metadata,
    }
    item = _call(lambda c: c.v1.invoice_items.create(params, _options(idempotency_key)))
    return str(item.id)


def finalize_invoice(invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
    """Finalize the draft: it gets Stripe's number and can no longer change."""
    invoice = _call(
        lambda c: c.v1.invoices.finalize_invoice(
            invoice_id, {"auto_advance": False}, _options(idempotency_key)
        )
    )
    return _invoice(invoice)


def send_invoice(invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
    """Have Stripe email the finalized invoice to the customer."""
    invoice = _call(
        lambda c: c.v1.invoices.send_invoice(invoice_id, None, _options(idempotency_key))
    )
    return _invoice(invoice)


def verify_webhook(payload: bytes, signature_header: str | None) -> dict[str, Any]:
    """The event of a webhook request, after checking its Stripe-Signature header against
    STRIPE_WEBHOOK_SECRET and its timestamp against STRIPE_WEBHOOK_TOLERANCE_S. Raises
    InvalidWebhook for a missing secret, a bad or stale signature, or a body that is not an
    event."""
    secret = text_setting("STRIPE_WEBHOOK_SECRET")
    if not secret.strip():
        raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not set")
    tolerance = int_setting("STRIPE_WEBHOOK_TOLERANCE_S")
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as error:
        raise InvalidWebhook(str(error)) from None
    if not _is_event(event):
        raise InvalidWebhook("the body is not a Stripe event")
    return event


def _is_event(event: object) -> bool:
    return (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    )


def _invoice(invoice: Any) -> StripeInvoice:
    return StripeInvoice(
        id=str(invoice.id),
        status=str(invoice.status),
        hosted_invoice_url=str(getattr(invoice, "hosted_invoice_url", None) or ""),
    )


def _options(idempotency_key: str) -> dict[str, Any]:
    if not idempotency_key:
        raise ValueError("every Stripe POST carries an idempotency key")
    return {"idempotency_key": idempotency_key}


def _call(request: Any) -> Any:
    """Run `request(client)` and translate the SDK's errors (see the module docstring)."""
    try:
        return request(_client())
    except stripe.CardError as error:
        raise _declined(error) from None
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise StripeUnavailable(str(error)) from error
    except stripe.StripeError as error:
        if error.http_status is None or error.http_status >= 500:
            raise StripeUnavailable(str(error)) from error
        raise StripeRefused(str(error)) from error


def _declined(error: stripe.CardError) -> PaymentDeclined:
    body = (error.json_body or {}).get("error", {}) if isinstance(error.json_body, dict) else {}
    intent = body.get("payment_intent") or {}
    return PaymentDeclined(
        code=str(error.code or body.get("code") or "card_declined"),
        decline_code=str(body.get("decline_code") or ""),
        message=str(body.get("message") or error.user_message or "The card was declined."),
        payment_intent_id=str(intent.get("id", "")) if isinstance(intent, dict) else "",
    )


def _client() -> stripe.StripeClient:
    key = text_setting("STRIPE_SECRET_KEY")
    if not key.strip():
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set")
    return _cached_client(
        key,
        text_setting("STRIPE_API_BASE").rstrip("/"),
        seconds_setting("STRIPE_CONNECT_TIMEOUT_S"),
        seconds_setting("STRIPE_READ_TIMEOUT_S"),
        int_setting("STRIPE_MAX_NETWORK_RETRIES"),
    )


@lru_cache(maxsize=4)
def _cached_client(
    key: str, api_base: str, connect_timeout: float, read_timeout: float, retries: int
) -> stripe.StripeClient:
    """One client per configuration (its HTTP sessions are per thread, so it is shared)."""
    return stripe.StripeClient(
        key,
        base_addresses={"api": api_base} if api_base else None,
        http_client=stripe.RequestsClient(timeout=(connect_timeout, read_timeout)),
        max_network_retries=retries,
    )
