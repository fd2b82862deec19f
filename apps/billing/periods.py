"""Billing periods: UTC calendar months (default), ISO weeks or days, chosen by BILLING_PERIOD.
A period is half-open: [start, end)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ImproperlyConfigured

from apps.billing.conf import text_setting

PERIODS = ("monthly", "weekly", "daily")


def period_kind() -> str:
    kind = text_setting("BILLING_PERIOD").strip().lower()
    if kind not in PERIODS:
        raise ImproperlyConfigured(f"BILLING_PERIOD must be one of {', '.join(PERIODS)}")
    return kind


def period_containing(moment: datetime, kind: str | None = None) -> tuple[datetime, datetime]:
    """The (start, end) of the period `moment` falls in."""
    kind = kind or period_kind()
    moment = moment.astimezone(UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "daily":
        return day, day + timedelta(days=1)
    if kind == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    return start, _next_month(start)


def periods_from(
    start: datetime, until: datetime, kind: str | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive periods from the one containing `start`, each ending at or before `until`."""
    kind = kind or period_kind()
    period = period_containing(start, kind)
    while period[1] <= until:
        yield period
        period = period_containing(period[1], kind)


def _next_month(start: datetime) -> datetime:
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)
