"""Celery tasks of billing: thin callers of the services. Network trouble with Stripe is retried
(with the same idempotency keys); bad data is recorded, never retried."""

import logging
from datetime import timedelta

from celery import Task, shared_task

from apps.billing import auto_recharge, invoicing, reconciliation, stripe_invoices, webhooks
from apps.billing.models import EventStatus
from apps.billing.stripe_gateway import StripeUnavailable

log = logging.getLogger(__name__)

LOST_EVENT_AGE = timedelta(minutes=10)  # a queued event task runs long before this
STUCK_RECHARGE_AGE = timedelta(minutes=5)
UNPUSHED_INVOICE_AGE = timedelta(minutes=5)
NETWORK_RETRY = {"autoretry_for": (StripeUnavailable,), "retry_backoff": 30, "max_retries": 8}


@shared_task(name="billing.apply_stripe_event", bind=True, ignore_result=True, max_retries=8)
def apply_stripe_event(self: Task, event_pk: int) -> str:
    """Apply one stored Stripe event; one that is not ready yet is retried with backoff."""
    outcome = webhooks.apply_event(event_pk)
    if outcome == EventStatus.RECEIVED:
        raise self.retry(countdown=min(2 ** (self.request.retries + 1), 300))
    return outcome


@shared_task(name="billing.sweep_stripe_events", ignore_result=True)
def sweep_stripe_events() -> int:
    """Queue stored events nobody applied (a lost task, a crash after the INSERT)."""
    pending = webhooks.stale_events(LOST_EVENT_AGE)
    for event_pk in pending:
        apply_stripe_event.delay(event_pk)
    return len(pending)


@shared_task(name="billing.check_balances", ignore_result=True)
def check_balances() -> int:
    """Low-balance alerts and auto-recharge claims for every organization that has either
    set; queues the charges. Also re-queues claimed charges that never finished."""
    claimed = 0
    for organization_id in auto_recharge.profiles_to_check():
        result = auto_recharge.check_balance(organization_id)
        if result.recharge is not None:
            charge_auto_recharge.delay(result.recharge.pk)
            claimed += 1
    for topup_id in auto_recharge.pending_recharges(STUCK_RECHARGE_AGE):
        charge_auto_recharge.delay(topup_id)
    return claimed


@shared_task(name="billing.charge_auto_recharge", ignore_result=True, **NETWORK_RETRY)
def charge_auto_recharge(topup_id: int) -> str:
    """Charge one claimed auto-recharge (same idempotency key on every retry)."""
    return auto_recharge.charge_recharge(topup_id).status


@shared_task(name="billing.close_periods", ignore_result=True)
def close_periods() -> int:
    """Close every organization's ended billing periods into invoices."""
    return invoicing.close_due_periods()


@shared_task(name="billing.push_invoice", ignore_result=True, **NETWORK_RETRY)
def push_invoice(invoice_id: int) -> str:
    """Create, finalize and send one post-paid invoice in Stripe (resumable)."""
    return stripe_invoices.push_invoice(invoice_id).stripe_status


@shared_task(name="billing.push_unfinished_invoices", ignore_result=True)
def push_unfinished_invoices() -> int:
    pending = stripe_invoices.unpushed_invoices(UNPUSHED_INVOICE_AGE)
    for invoice_id in pending:
        push_invoice.delay(invoice_id)
    return len(pending)


@shared_task(name="billing.reconcile_invoices", ignore_result=True)
def reconcile_invoices() -> int:
    """Check every closed period (apps/billing/reconciliation.py); the mismatch count."""
    return len(reconciliation.reconcile_closed_periods())
