"""Celery tasks of the keys domain."""

from celery import shared_task

from apps.keys.usage_marks import drain_last_used


@shared_task(name="keys.flush_last_used")
def flush_last_used() -> int:
    """Copy the gateway's last-used times from Redis into PostgreSQL."""
    return drain_last_used()
