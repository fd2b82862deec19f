"""Celery tasks of the ledger domain."""

from celery import shared_task

from apps.ledger.reconcile import reconcile_all


@shared_task(name="ledger.reconcile", ignore_result=True)
def reconcile() -> int:
    """Check every organization's money (see apps/ledger/reconcile.py); the mismatch count."""
    return len(reconcile_all())
