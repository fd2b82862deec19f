"""Helpers of the billing tests: signed webhook deliveries and racing threads."""

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connections
from django.test import Client, TestCase

from apps.billing.models import StripeEvent
from apps.billing.topups import start_checkout
from tests.support.fake_stripe import sign

WEBHOOK_SECRET = "whsec_tollgate_test"
WEBHOOK_URL = "/stripe/webhook"


def deliver(client: Client, event: dict, *, timestamp: int | None = None) -> int:
    """POST a signed webhook delivery of `event`; the status code."""
    body, header = sign(event, WEBHOOK_SECRET, timestamp=timestamp)
    with run_on_commit():
        response = client.post(
            WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
    return response.status_code


def run_on_commit() -> Any:
    """Run what is queued for after commit when the test's transaction would hide it (in a
    transactional test, callbacks run at each real commit anyway)."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def deliver_all(events: list[dict]) -> list[int]:
    client = Client()
    return [deliver(client, event) for event in events]


def event_statuses() -> dict[str, str]:
    return dict(StripeEvent.objects.values_list("type", "status"))


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads started together; their results (re-raises errors).
    Each thread closes its own database connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:  # handed to the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


def paid_checkout(people: Any, fake_stripe: Any, amount: str = "25.00", **options) -> list[dict]:
    """A top-up the buyer paid: Stripe's events, not delivered yet."""
    topup, _ = start_checkout(
        people.acme,
        Decimal(amount),
        requested_by=people.alice,
        save_card=options.pop("save_card", False),
        success_url="https://t.example/ok",
        cancel_url="https://t.example/no",
    )
    return fake_stripe.complete_checkout(topup.stripe_checkout_session_id, **options)


def completed(events: list[dict]) -> dict:
    return next(e for e in events if e["type"] == "checkout.session.completed")
