"""Stripe webhook intake: store the raw event first, apply it later in a Celery task.

`record_event` runs in the request: one INSERT behind a unique event id, then the task is queued
after commit. Stripe gets its 200 at once, and a crash after the INSERT loses nothing (the sweep
in `stale_events` queues events nobody applied). `apply_event` locks the event row, runs the
handler for its type in a savepoint and records the outcome — processed, ignored (a type we do
not handle), failed (with the error kept) — so a redelivered or replayed event is a no-op.
"""

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.billing import auto_recharge, reversals, stripe_invoices, topups
from apps.billing.after_commit import after_commit
from apps.billing.conf import int_setting
from apps.billing.errors import EventDataError, EventNotReady
from apps.billing.models import EventStatus, StripeEvent

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], object]  # what it returns is not used

# The event types to enable on the Stripe webhook endpoint (docs/billing.md); each handler
# gets the event's data.object and is idempotent on its own.
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": topups.apply_checkout_paid,
    "checkout.session.async_payment_succeeded": topups.apply_checkout_paid,
    "checkout.session.expired": topups.apply_checkout_expired,
    "payment_intent.succeeded": auto_recharge.apply_payment_intent_succeeded,
    "charge.refunded": reversals.apply_charge_refunded,
    "charge.dispute.closed": reversals.apply_dispute_closed,
    "invoice.paid": stripe_invoices.apply_invoice_paid,
}


def record_event(payload: bytes, event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """Store a verified event (the raw body as received); (row, whether it is new). A new
    event is queued for `apply_event` after commit; a repeat changes nothing."""
    with transaction.atomic():
        stored, created = StripeEvent.objects.get_or_create(
            event_id=event["id"],
            defaults={
                "type": event["type"],
                "livemode": bool(event.get("livemode")),
                "payload": payload.decode("utf-8"),
            },
        )
        if created:
            after_commit(_queue, stored.pk)
    return stored, created


def _queue(event_pk: int) -> None:
    from apps.billing.tasks import apply_stripe_event  # noqa: PLC0415 - tasks import this module

    apply_stripe_event.delay(event_pk)


def apply_event(event_pk: int) -> str:
    """Apply one stored event (at most once, whoever races); its status afterwards. An event
    that cannot be applied yet stays `received` (with the reason) until it has been tried
    STRIPE_EVENT_MAX_ATTEMPTS times, then it is `failed`."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.status != EventStatus.RECEIVED:
            return event.status
        handler = HANDLERS.get(event.type)
        event.attempts += 1
        if handler is None:
            _finish(event, EventStatus.IGNORED)
        else:
            _run(event, handler)
        event.save(update_fields=["status", "attempts", "error", "processed_at"])
    return event.status


def _run(event: StripeEvent, handler: Handler) -> None:
    try:
        with transaction.atomic():
            handler(json.loads(event.payload)["data"]["object"])
    except EventDataError as error:
        _finish(event, EventStatus.FAILED, str(error))
    except EventNotReady as error:
        exhausted = event.attempts >= int_setting("STRIPE_EVENT_MAX_ATTEMPTS")
        _finish(event, EventStatus.FAILED if exhausted else EventStatus.RECEIVED, str(error))
    except Exception as error:  # keep the error on the event; the sweep retries it
        log.exception("Applying Stripe event %s failed", event.event_id)
        exhausted = event.attempts >= int_setting("STRIPE_EVENT_MAX_ATTEMPTS")
        status = EventStatus.FAILED if exhausted else EventStatus.RECEIVED
        _finish(event, status, f"{type(error).__name__}: {error}")
    else:
        _finish(event, EventStatus.PROCESSED)


def _finish(event: StripeEvent, status: str, error: str = "") -> None:
    event.status = status
    event.error = error
    event.processed_at = timezone.now() if status != EventStatus.RECEIVED else None


def stale_events(older_than: timedelta) -> list[int]:
    """Events still `received` after `older_than`: their task was lost or must retry."""
    return list(
        StripeEvent.objects.filter(
            status=EventStatus.RECEIVED, received_at__lt=timezone.now() - older_than
        )
        .order_by("received_at")
        .values_list("pk", flat=True)
    )


def reapply_event(event_pk: int) -> str:
    """An operator's retry of a failed event (from the admin): back to `received`, applied."""
    StripeEvent.objects.filter(pk=event_pk, status=EventStatus.FAILED).update(
        status=EventStatus.RECEIVED, error="", attempts=0
    )
    return apply_event(event_pk)
