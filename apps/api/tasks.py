"""Celery tasks of the management API (thin: each calls one service)."""

from celery import shared_task

from apps.api.services import purge_idempotency_records


@shared_task(name="api.purge_idempotency_records")
def purge_idempotency_records_task() -> int:
    """Forget idempotent responses older than 24 hours; returns how many were removed."""
    return purge_idempotency_records()
