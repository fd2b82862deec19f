"""A stateful fake of exactly the Stripe endpoints Tollgate calls, on a loopback port.

The platform reaches it through the real `stripe` SDK (STRIPE_API_BASE), so the SDK's encoding,
headers and error mapping are exercised unchanged. Its surface is the surface of
apps/billing/stripe_gateway.py, no more:

    POST /v1/customers                    POST /v1/invoices
    POST /v1/checkout/sessions            POST /v1/invoiceitems
    POST /v1/payment_intents              POST /v1/invoices/{id}/finalize
    POST /v1/refunds                      POST /v1/invoices/{id}/send

- Objects are built from Stripe's published fixtures (fixtures3.json, MIT; path in
  STRIPE_FIXTURES or ../shared/stripe/fixtures3.json next to the repository) and then filled with
  the state of this fake, so they have Stripe's shapes.
- Parameters are checked against a schema per endpoint (`ENDPOINTS`): an unknown parameter, a
  missing required one, or a value of the wrong type is refused with Stripe's 400 error, and the
  refusal is kept in `refusals` so a test fails loudly even if the caller swallows the error.
- `Idempotency-Key` is honoured as Stripe does: the same key with the same parameters replays
  the first answer (header `Idempotent-Replayed: true`) without doing anything; with other
  parameters it is an `idempotency_error`. Every key must start with `key_prefix`: the SDK
  invents a key when the caller gives none, and this catches that.
- Test helpers act as Stripe and the customer would (`complete_checkout`, `refund`,
  `close_dispute`, `pay_invoice`) and return the events Stripe would send; `sign` signs a
  payload with the SDK's own `WebhookSignature.generate_signature_header`.
"""

import copy
import json
import os
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import stripe

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FIXTURES = ROOT.parent / "shared" / "stripe" / "fixtures3.json"

# --- parameter schemas ------------------------------------------------------------------------


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]


STR, INT, BOOL, METADATA = "string", "integer", "boolean", "metadata"
Schema = dict[str, Any]  # name -> STR | INT | BOOL | METADATA | Enum | Schema | [Schema]

CUSTOMER_CREATE: Schema = {"name": STR, "email": STR, "description": STR, "metadata": METADATA}
CHECKOUT_CREATE: Schema = {
    "mode": Enum(("payment",)),
    "customer": STR,
    "client_reference_id": STR,
    "line_items": [
        {
            "quantity": INT,
            "price_data": {
                "currency": STR,
                "unit_amount": INT,
                "product_data": {"name": STR, "description": STR},
            },
        }
    ],
    "metadata": METADATA,
    "payment_intent_data": {
        "metadata": METADATA,
        "setup_future_usage": Enum(("off_session", "on_session")),
        "description": STR,
    },
    "success_url": STR,
    "cancel_url": STR,
}
PAYMENT_INTENT_CREATE: Schema = {
    "amount": INT,
    "currency": STR,
    "customer": STR,
    "payment_method": STR,
    "off_session": BOOL,
    "confirm": BOOL,
    "description": STR,
    "metadata": METADATA,
}
INVOICE_CREATE: Schema = {
    "customer": STR,
    "currency": STR,
    "collection_method": Enum(("charge_automatically", "send_invoice")),
    "days_until_due": INT,
    "auto_advance": BOOL,
    "pending_invoice_items_behavior": Enum(("exclude", "include")),
    "description": STR,
    "metadata": METADATA,
}
INVOICE_ITEM_CREATE: Schema = {
    "customer": STR,
    "invoice": STR,
    "amount": INT,
    "currency": STR,
    "description": STR,
    "metadata": METADATA,
}
REFUND_CREATE: Schema = {
    "payment_intent": STR,
    "charge": STR,
    "amount": INT,
    "reason": Enum(("duplicate", "fraudulent", "requested_by_customer")),
    "metadata": METADATA,
    "expand": [Enum(("charge",))],
}
INVOICE_FINALIZE: Schema = {"auto_advance": BOOL}
INVOICE_SEND: Schema = {}


@dataclass(frozen=True)
class Endpoint:
    method: str
    pattern: str  # {id} captures one object id
    handler: str  # name of the FakeStripe method
    schema: Schema
    required: tuple[str, ...] = ()

    def match(self, method: str, path: str) -> dict[str, str] | None:
        regex = "^" + re.escape(self.pattern).replace(r"\{id\}", r"(?P<id>[A-Za-z0-9_]+)") + "$"
        found = re.match(regex, path) if method == self.method else None
        return found.groupdict() if found else None


ENDPOINTS = (
    Endpoint("POST", "/v1/customers", "create_customer", CUSTOMER_CREATE),
    Endpoint(
        "POST",
        "/v1/checkout/sessions",
        "create_checkout_session",
        CHECKOUT_CREATE,
        ("mode", "success_url", "line_items"),
    ),
    Endpoint(
        "POST",
        "/v1/payment_intents",
        "create_payment_intent",
        PAYMENT_INTENT_CREATE,
        ("amount", "currency"),
    ),
    Endpoint("POST", "/v1/refunds", "create_refund", REFUND_CREATE),
    Endpoint("POST", "/v1/invoices", "create_invoice", INVOICE_CREATE, ("customer",)),
    Endpoint(
        "POST",
        "/v1/invoiceitems",
        "create_invoice_item",
        INVOICE_ITEM_CREATE,
        ("customer", "amount", "currency"),
    ),
    Endpoint("POST", "/v1/invoices/{id}/finalize", "finalize_invoice", INVOICE_FINALIZE),
    Endpoint("POST", "/v1/invoices/{id}/send", "send_invoice", INVOICE_SEND),
)


class StripeFailure(Exception):
    """An error answer, in Stripe's shape."""

    def __init__(self, status: int, error: dict[str, Any]):
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error

    def body(self) -> dict[str, Any]:
        return {"error": self.error}


def invalid(message: str, *, param: str = "", code: str = "") -> StripeFailure:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
    return StripeFailure(HTTPStatus.BAD_REQUEST, error)


def missing(kind: str, object_id: str, param: str) -> StripeFailure:
    return invalid(f"No such {kind}: '{object_id}'", param=param, code="resource_missing")


# --- form decoding and validation -------------------------------------------------------------


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) into nested dicts; list indexes stay keys."""
    params: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body)):
        head, *rest = re.findall(r"[^\[\]]+|(?<=\[)(?=\])", key)
        path = [head, *rest]
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise invalid(f"Invalid parameter: {key}", param=key)
        node[path[-1]] = value
    return params


def validate(params: dict[str, Any], schema: Schema, prefix: str = "") -> dict[str, Any]:
    """The parameters converted to their types; StripeFailure for anything the schema does
    not know or a value of the wrong type."""
    clean: dict[str, Any] = {}
    for name, value in params.items():
        full = f"{prefix}[{name}]" if prefix else name
        if name not in schema:
            raise invalid(
                f"Received unknown parameter: {full}", param=full, code="parameter_unknown"
            )
        clean[name] = convert(value, schema[name], full)
    return clean


def convert(value: Any, kind: Any, name: str) -> Any:
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {name}", param=name)
        return validate(value, kind, name)
    if isinstance(kind, list):
        return convert_list(value, kind[0], name)
    if kind == METADATA:
        return convert_metadata(value, name)
    if isinstance(value, dict):
        raise invalid(f"Invalid {kind}: {name} is an object", param=name)
    return convert_scalar(value, kind, name)


def convert_list(value: Any, item_kind: Any, name: str) -> list[Any]:
    if not isinstance(value, dict) or sorted(value, key=int) != [
        str(index) for index in range(len(value))
    ]:
        raise invalid(f"Invalid array: {name}", param=name)
    return [
        convert(value[str(index)], item_kind, f"{name}[{index}]") for index in range(len(value))
    ]


def convert_metadata(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > 50:
        raise invalid(f"Invalid metadata: {name}", param=name)
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 40 or len(item) > 500:
            raise invalid(f"Invalid metadata value: {name}[{key}]", param=f"{name}[{key}]")
    return dict(value)


def convert_scalar(value: str, kind: Any, name: str) -> Any:
    if isinstance(kind, Enum):
        if value not in kind.values:
            raise invalid(f"Invalid {name}: must be one of {', '.join(kind.values)}", param=name)
        return value
    if kind == INT:
        if not re.fullmatch(r"-?\d+", value):
            raise invalid(f"Invalid integer: {value}", param=name)
        return int(value)
    if kind == BOOL:
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value}", param=name)
        return value == "true"
    return value


def load_fixtures() -> dict[str, Any]:
    path = Path(os.environ.get("STRIPE_FIXTURES", DEFAULT_FIXTURES))
    if not path.exists():
        raise FileNotFoundError(
            f"Stripe's fixtures3.json is not at {path}; set STRIPE_FIXTURES to its path."
        )
    return json.loads(path.read_text())["resources"]


# --- the fake ---------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str
    status: int
    replayed: bool


@dataclass
class FakeStripe:
    """Stripe's state as far as Tollgate can see it. Thread-safe: one lock around each
    request and helper."""

    api_key: str = "sk_test_tollgate_fake"
    key_prefix: str = "tollgate-"
    fixtures: dict[str, Any] = field(default_factory=load_fixtures)
    customers: dict[str, dict] = field(default_factory=dict)
    sessions: dict[str, dict] = field(default_factory=dict)
    payment_intents: dict[str, dict] = field(default_factory=dict)
    payment_methods: dict[str, dict] = field(default_factory=dict)
    charges: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    invoice_items: dict[str, dict] = field(default_factory=dict)
    sent_invoices: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    declining_methods: set[str] = field(default_factory=set)
    idempotency: dict[str, tuple[str, int, dict]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before working
    outages: dict[str, int] = field(default_factory=dict)  # path prefix -> requests to fail

    # --- HTTP ---------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict, dict[str, str]]:
        """One API request: (status, JSON body, extra headers)."""
        with self.lock:
            key = headers.get("idempotency-key", "")
            try:
                self._authenticate(headers)
                endpoint, ids = self._route(method, path)
                params = self._params(endpoint, body)
                fingerprint = json.dumps([method, path, params], sort_keys=True)
                replay = self._replay(key, fingerprint)
                if replay is not None:
                    self._record(method, path, params, key, replay[0], replayed=True)
                    return replay[0], replay[1], {"Idempotent-Replayed": "true"}
                self._maybe_fail(path)
                status, result = self._execute(endpoint, ids, params)
                self.idempotency[key] = (fingerprint, status, result)
                self._record(method, path, params, key, status, replayed=False)
                return status, result, {}
            except StripeFailure as failure:
                if failure.status == HTTPStatus.BAD_REQUEST:
                    self.refusals.append(f"{method} {path}: {failure.error.get('message')}")
                self._record(method, path, {}, key, failure.status, replayed=False)
                return failure.status, failure.body(), {}

    def _maybe_fail(self, path: str) -> None:
        """Answer 5xx instead of working, as `fail_next` and `outages` ask."""
        status = self.fail_next.pop(0) if self.fail_next else None
        for prefix, remaining in self.outages.items():
            if status is None and remaining > 0 and path.startswith(prefix):
                self.outages[prefix] = remaining - 1
                status = HTTPStatus.SERVICE_UNAVAILABLE
        if status is not None:
            raise StripeFailure(status, {"type": "api_error", "message": "Fake outage"})

    def _authenticate(self, headers: dict[str, str]) -> None:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            raise StripeFailure(
                HTTPStatus.UNAUTHORIZED,
                {"type": "invalid_request_error", "message": "Invalid API Key provided"},
            )

    def _route(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        for endpoint in ENDPOINTS:
            ids = endpoint.match(method, path)
            if ids is not None:
                return endpoint, ids
        raise StripeFailure(
            HTTPStatus.NOT_FOUND,
            {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({method}: {path}). The fake only "
                "serves what apps/billing/stripe_gateway.py calls.",
            },
        )

    def _params(self, endpoint: Endpoint, body: str) -> dict[str, Any]:
        params = validate(decode_form(body), endpoint.schema)
        for name in endpoint.required:
            if name not in params:
                raise invalid(
                    f"Missing required param: {name}.", param=name, code="parameter_missing"
                )
        return params

    def _replay(self, key: str, fingerprint: str) -> tuple[int, dict] | None:
        if not key.startswith(self.key_prefix):
            raise invalid(
                f"Idempotency-Key {key!r} was not chosen by the platform (expected the prefix "
                f"{self.key_prefix!r})"
            )
        stored = self.idempotency.get(key)
        if stored is None:
            return None
        if stored[0] != fingerprint:
            raise StripeFailure(
                HTTPStatus.BAD_REQUEST,
                {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with.",
                },
            )
        return stored[1], stored[2]

    def _execute(self, endpoint: Endpoint, ids: dict[str, str], params: dict) -> tuple[int, dict]:
        handler: Callable[..., dict] = getattr(self, endpoint.handler)
        try:
            return HTTPStatus.OK, handler(params, **ids)
        except StripeFailure as failure:
            if failure.status == HTTPStatus.PAYMENT_REQUIRED:  # Stripe stores card errors
                return failure.status, failure.body()
            raise

    def _record(
        self, method: str, path: str, params: dict, key: str, status: int, *, replayed: bool
    ) -> None:
        self.requests.append(RecordedRequest(method, path, params, key, status, replayed))

    # --- endpoints ----------------------------------------------------------------------------

    def create_customer(self, params: dict) -> dict:
        customer = self._object("customer", "cus")
        customer.update(
            name=params.get("name"),
            email=params.get("email"),
            description=params.get("description"),
            metadata=params.get("metadata", {}),
            discount=None,
            invoice_prefix=_random(string.ascii_uppercase + string.digits, 8),
            next_invoice_sequence=1,
        )
        self.customers[customer["id"]] = customer
        return copy.deepcopy(customer)

    def create_checkout_session(self, params: dict) -> dict:
        customer = self._customer(params.get("customer"), "customer")
        if len(params["line_items"]) != 1:
            raise invalid("The fake supports one line item.", param="line_items")
        item = params["line_items"][0]
        price = item.get("price_data") or {}
        unit_amount, currency = price.get("unit_amount"), price.get("currency")
        if unit_amount is None or currency != "usd" or not price.get("product_data"):
            raise invalid("price_data needs unit_amount, currency usd and product_data")
        if unit_amount < 50:
            raise invalid("Amount must be at least $0.50 usd", param="line_items[0]")
        amount = unit_amount * item.get("quantity", 1)
        session = self._object("checkout.session", "cs_test")
        session.update(
            customer=customer["id"] if customer else None,
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata", {}),
            success_url=params["success_url"],
            cancel_url=params.get("cancel_url"),
            currency=currency,
            amount_subtotal=amount,
            amount_total=amount,
            payment_status="unpaid",
            status="open",
            payment_intent=None,
            mode=params["mode"],
            created=int(time.time()),
            expires_at=int(time.time()) + 86400,
            url=f"https://checkout.stripe.com/c/pay/{session['id']}",
            shipping_cost=None,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        )
        session["_payment_intent_data"] = params.get("payment_intent_data", {})
        self.sessions[session["id"]] = session
        return _public(session)

    def create_payment_intent(self, params: dict) -> dict:
        customer = self._customer(params.get("customer"), "customer")
        method_id = params.get("payment_method")
        method = self.payment_methods.get(method_id or "")
        if method_id and method is None:
            raise missing("payment_method", method_id, "payment_method")
        if method and customer and method["customer"] != customer["id"]:
            raise invalid(
                "The payment method does not belong to the customer.", param="payment_method"
            )
        intent = self._intent(params, customer, method)
        if not (params.get("confirm") and method):
            return copy.deepcopy(intent)
        if method["id"] in self.declining_methods:
            raise self._decline(intent)
        self._succeed(intent, method)
        self.events.append(self.event("payment_intent.succeeded", intent))
        return copy.deepcopy(intent)

    def create_refund(self, params: dict) -> dict:
        """Refund part or all of a succeeded charge, named by it or by its payment intent; the
        `charge.refunded` event goes to `events` for the test to deliver."""
        charge = self._refundable_charge(params)
        amount = params.get("amount", charge["amount"] - charge["amount_refunded"])
        if amount <= 0 or charge["amount_refunded"] + amount > charge["amount"]:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({charge['amount'] - charge['amount_refunded']})",
                param="amount",
                code="amount_too_large",
            )
        self._take_refund(charge, amount)
        refund = self._object("refund", "re")
        refund.update(
            amount=amount,
            charge=charge["id"],
            payment_intent=charge["payment_intent"],
            currency=charge["currency"],
            reason=params.get("reason"),
            metadata=params.get("metadata", {}),
            status="succeeded",
        )
        self.refunds[refund["id"]] = refund
        if "charge" in params.get("expand", []):
            return {**_public(refund), "charge": _public(charge)}
        return _public(refund)

    def _refundable_charge(self, params: dict) -> dict:
        if "charge" in params:
            charge = self.charges.get(params["charge"])
            if charge is None:
                raise missing("charge", params["charge"], "charge")
            return charge
        intent = self.payment_intents.get(params.get("payment_intent", ""))
        if intent is None:
            raise missing("payment_intent", params.get("payment_intent", ""), "payment_intent")
        if intent["latest_charge"] is None:
            raise invalid(
                f"PaymentIntent {intent['id']} does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        return self.charges[intent["latest_charge"]]

    def create_invoice(self, params: dict) -> dict:
        customer = self._customer(params["customer"], "customer")
        if params.get("collection_method") == "send_invoice" and "days_until_due" not in params:
            raise invalid("Missing days_until_due for send_invoice", param="days_until_due")
        invoice = self._object("invoice", "in")
        invoice.update(
            customer=customer["id"] if customer else None,
            currency=params.get("currency", "usd"),
            collection_method=params.get("collection_method", "charge_automatically"),
            auto_advance=params.get("auto_advance", False),
            description=params.get("description"),
            metadata=params.get("metadata", {}),
            status="draft",
            number=None,
            hosted_invoice_url=None,
            invoice_pdf=None,
            created=int(time.time()),
            due_date=None,
            amount_due=0,
            amount_paid=0,
            amount_remaining=0,
            subtotal=0,
            subtotal_excluding_tax=0,
            total=0,
            total_excluding_tax=0,
            amount_overpaid=0,
            shipping_cost=None,
            from_invoice=None,
            last_finalization_error=None,
            parent=None,
            status_transitions={
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
        )
        invoice["lines"] = {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/invoices/{invoice['id']}/lines",
        }
        self.invoices[invoice["id"]] = invoice
        return copy.deepcopy(invoice)

    def create_invoice_item(self, params: dict) -> dict:
        customer = self._customer(params["customer"], "customer")
        invoice = self.invoices.get(params.get("invoice", ""))
        if "invoice" in params and invoice is None:
            raise missing("invoice", params["invoice"], "invoice")
        if invoice is None or customer is None or invoice["customer"] != customer["id"]:
            raise invalid("The fake only adds items to a draft invoice of the same customer.")
        if invoice["status"] != "draft" or params["currency"] != invoice["currency"]:
            raise invalid("Invoice items go on draft invoices in the invoice's currency.")
        item = self._object("invoiceitem", "ii")
        item.update(
            customer=customer["id"],
            invoice=invoice["id"],
            amount=params["amount"],
            currency=params["currency"],
            description=params.get("description"),
            metadata=params.get("metadata", {}),
            date=int(time.time()),
            parent=None,
            net_amount=params["amount"],
            quantity_decimal="1",
        )
        self.invoice_items[item["id"]] = item
        self._add_line(invoice, item)
        return copy.deepcopy(item)

    def finalize_invoice(self, params: dict, id: str) -> dict:
        invoice = self._invoice(id)
        if invoice["status"] != "draft":
            raise invalid(f"Invoice {id} is already finalized.", code="invoice_not_editable")
        customer = self.customers[invoice["customer"]]
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        invoice["status"] = "open" if invoice["amount_due"] > 0 else "paid"
        invoice["auto_advance"] = params.get("auto_advance", invoice["auto_advance"])
        invoice["status_transitions"]["finalized_at"] = int(time.time())
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/{invoice['id']}"
        invoice["invoice_pdf"] = f"https://pay.stripe.com/invoice/{invoice['id']}/pdf"
        self.events.append(self.event("invoice.finalized", invoice))
        return copy.deepcopy(invoice)

    def send_invoice(self, params: dict, id: str) -> dict:
        invoice = self._invoice(id)
        if invoice["status"] != "open" or invoice["collection_method"] != "send_invoice":
            raise invalid(f"Invoice {id} cannot be sent (status {invoice['status']}).")
        self.sent_invoices.append(id)
        self.events.append(self.event("invoice.sent", invoice))
        return copy.deepcopy(invoice)

    # --- what customers and Stripe do (test helpers) ------------------------------------------

    def complete_checkout(self, session_id: str, *, declines_later: bool = False) -> list[dict]:
        """The buyer pays the session with a card (one that will decline off-session charges
        if `declines_later`); the events Stripe sends, in its order."""
        with self.lock:
            session = self.sessions[session_id]
            data = session["_payment_intent_data"]
            method = self._payment_method(session["customer"])
            if declines_later:
                self.declining_methods.add(method["id"])
            intent = self._intent(
                {
                    "amount": session["amount_total"],
                    "currency": session["currency"],
                    "metadata": data.get("metadata", {}),
                },
                self.customers.get(session["customer"] or ""),
                method,
            )
            intent["setup_future_usage"] = data.get("setup_future_usage")
            charge = self._succeed(intent, method)
            if not intent["setup_future_usage"]:
                method["customer"] = None  # not saved: cannot be charged again
            session.update(payment_status="paid", status="complete", payment_intent=intent["id"])
            events = [
                self.event("payment_intent.succeeded", intent),
                self.event("charge.succeeded", charge),
                self.event("checkout.session.completed", _public(session)),
            ]
            self.events.extend(events)
            return events

    def refund(self, charge_id: str, amount: int) -> dict:
        """Refund `amount` cents more of a charge; the `charge.refunded` event."""
        with self.lock:
            charge = self.charges[charge_id]
            if charge["amount_refunded"] + amount > charge["amount"]:
                raise ValueError("refunding more than was charged")
            return self._take_refund(charge, amount)

    def close_dispute(self, charge_id: str, status: str = "lost") -> dict:
        """A dispute of the whole charge, closed won or lost; the `charge.dispute.closed` event."""
        with self.lock:
            charge = self.charges[charge_id]
            dispute = self._object("dispute", "dp")
            dispute.update(
                amount=charge["amount"],
                charge=charge_id,
                payment_intent=charge["payment_intent"],
                currency=charge["currency"],
                status=status,
                reason="fraudulent",
            )
            charge["disputed"] = True
            event = self.event("charge.dispute.closed", dispute)
            self.events.append(event)
            return event

    def pay_invoice(self, invoice_id: str) -> dict:
        """The customer pays a sent invoice; the `invoice.paid` event."""
        with self.lock:
            invoice = self._invoice(invoice_id)
            if invoice["status"] != "open":
                raise ValueError(f"invoice {invoice_id} is {invoice['status']}")
            invoice.update(
                status="paid",
                amount_paid=invoice["amount_due"],
                amount_remaining=0,
            )
            invoice["status_transitions"]["paid_at"] = int(time.time())
            event = self.event("invoice.paid", invoice)
            self.events.append(event)
            return event

    def event(self, event_type: str, data_object: dict) -> dict:
        """An event around a copy of `data_object`, shaped like Stripe's event fixture."""
        event = copy.deepcopy(self.fixtures["event"])
        event.update(
            id=_new_id("evt"),
            type=event_type,
            created=int(time.time()),
            api_version=stripe.api_version,
            data={"object": _public(data_object)},
            request={"id": None, "idempotency_key": None},
        )
        return event

    def charge_of(self, payment_intent_id: str) -> str:
        return self.payment_intents[payment_intent_id]["latest_charge"]

    def calls(self, path_prefix: str) -> list[RecordedRequest]:
        """Every recorded request whose path starts with `path_prefix`, whatever its answer."""
        return [request for request in self.requests if request.path.startswith(path_prefix)]

    def posts(self, path_prefix: str, *, replayed: bool | None = None) -> list[RecordedRequest]:
        """Recorded successful POSTs whose path starts with `path_prefix`."""
        return [
            request
            for request in self.requests
            if request.path.startswith(path_prefix)
            and request.status < 400
            and (replayed is None or request.replayed == replayed)
        ]

    # --- building objects ---------------------------------------------------------------------

    def _object(self, resource: str, prefix: str) -> dict:
        built = copy.deepcopy(self.fixtures[resource])
        built.update(id=_new_id(prefix), created=int(time.time()), livemode=False)
        return built

    def _customer(self, customer_id: str | None, param: str) -> dict | None:
        if customer_id is None:
            return None
        customer = self.customers.get(customer_id)
        if customer is None:
            raise missing("customer", customer_id, param)
        return customer

    def _invoice(self, invoice_id: str) -> dict:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise missing("invoice", invoice_id, "invoice")
        return invoice

    def _payment_method(self, customer_id: str | None) -> dict:
        method = self._object("payment_method", "pm")
        method.update(customer=customer_id, metadata={})
        method["card"]["last4"] = "4242"
        self.payment_methods[method["id"]] = method
        return method

    def _intent(self, params: dict, customer: dict | None, method: dict | None) -> dict:
        intent = self._object("payment_intent", "pi")
        intent.update(
            amount=params["amount"],
            amount_received=0,
            currency=params["currency"],
            customer=customer["id"] if customer else None,
            payment_method=method["id"] if method else None,
            description=params.get("description"),
            metadata=params.get("metadata", {}),
            status="requires_confirmation" if method else "requires_payment_method",
            canceled_at=None,
            last_payment_error=None,
            latest_charge=None,
            next_action=None,
            processing=None,
            transfer_data=None,
            setup_future_usage=None,
        )
        intent["client_secret"] = f"{intent['id']}_secret_{_random(string.ascii_letters, 24)}"
        self.payment_intents[intent["id"]] = intent
        return intent

    def _succeed(self, intent: dict, method: dict) -> dict:
        charge = self._object("charge", "ch")
        charge.update(
            amount=intent["amount"],
            amount_captured=intent["amount"],
            amount_refunded=0,
            captured=True,
            paid=True,
            refunded=False,
            disputed=False,
            status="succeeded",
            currency=intent["currency"],
            customer=intent["customer"],
            payment_intent=intent["id"],
            payment_method=method["id"],
            description=intent["description"],
            metadata={},
        )
        self.charges[charge["id"]] = charge
        intent.update(
            status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"]
        )
        return charge

    def _take_refund(self, charge: dict, amount: int) -> dict:
        """Refund `amount` cents more of `charge`; the `charge.refunded` event (kept)."""
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        event = self.event("charge.refunded", charge)
        self.events.append(event)
        return event

    def _decline(self, intent: dict) -> StripeFailure:
        error = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_method": copy.deepcopy(self.payment_methods[intent["payment_method"]]),
        }
        intent.update(status="requires_payment_method", last_payment_error=copy.deepcopy(error))
        error["payment_intent"] = copy.deepcopy(intent)
        self.events.append(self.event("payment_intent.payment_failed", intent))
        return StripeFailure(HTTPStatus.PAYMENT_REQUIRED, error)

    def _add_line(self, invoice: dict, item: dict) -> None:
        line = copy.deepcopy(self.fixtures["invoice"]["lines"]["data"][0])
        line.update(
            id=_new_id("il"),
            invoice=invoice["id"],
            amount=item["amount"],
            subtotal=item["amount"],
            currency=item["currency"],
            description=item["description"],
            metadata=item["metadata"],
            quantity=1,
            quantity_decimal="1",
            discountable=True,
            parent={
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": item["id"],
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": None,
                },
                "subscription_item_details": None,
            },
        )
        invoice["lines"]["data"].append(line)
        total = sum(entry["amount"] for entry in invoice["lines"]["data"])
        invoice.update(
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            amount_due=total,
            amount_remaining=total,
        )


def sign(event: dict, secret: str, *, timestamp: int | None = None) -> tuple[bytes, str]:
    """(body, Stripe-Signature header) of a webhook delivery, signed with the SDK's code."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return payload.encode(), header


def _public(stripe_object: dict) -> dict:
    """A deep copy without the fake's private `_…` keys."""
    return {k: copy.deepcopy(v) for k, v in stripe_object.items() if not k.startswith("_")}


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_random(string.ascii_letters + string.digits, 24)}"


# --- the server -------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe  # set on the subclass made per server

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, result, extra = self.fake.handle(self.command, path, headers, body or query)
        payload = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded on the fake instead."""


@contextmanager
def serve(fake: FakeStripe) -> Iterator[str]:
    """Serve `fake` on a free loopback port; yields its base URL."""
    handler = type("FakeStripeHandler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-stripe", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
