"""Celery tasks of the metering domain."""

from celery import shared_task
from django.conf import settings

from apps.metering.ingest import default_consumer_name, ingest_pending

DEFAULT_BATCH_SIZE = 1000
DEFAULT_CLAIM_IDLE_MS = 60_000
DEFAULT_TIME_BUDGET_S = 5.0


@shared_task(name="metering.ingest_usage", ignore_result=True)
def ingest_usage(
    batch_size: int | None = None,
    claim_idle_ms: int | None = None,
    time_budget_s: float | None = None,
) -> int:
    """Drain the usage stream into PostgreSQL until it is empty or the time budget (seconds)
    is spent; the number of stream entries handled. Arguments override the settings
    METERING_BATCH_SIZE, METERING_CLAIM_IDLE_MS (ms) and METERING_TIME_BUDGET_S (s)."""
    if batch_size is None:
        batch_size = getattr(settings, "METERING_BATCH_SIZE", DEFAULT_BATCH_SIZE)
    if claim_idle_ms is None:
        claim_idle_ms = getattr(settings, "METERING_CLAIM_IDLE_MS", DEFAULT_CLAIM_IDLE_MS)
    if time_budget_s is None:
        time_budget_s = getattr(settings, "METERING_TIME_BUDGET_S", DEFAULT_TIME_BUDGET_S)
    return ingest_pending(
        consumer=default_consumer_name(),
        batch_size=batch_size,
        claim_idle_ms=claim_idle_ms,
        time_budget_s=time_budget_s,
    )
