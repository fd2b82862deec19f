"""The operations overview: traffic, revenue and upstream health from the usage rows.

Six queries whatever the data: one conditional aggregate for the three windows, one per
breakdown (models, organizations, deployments) and one each for the names of the top
organizations and of the deployments. Revenue is the sum of usage cost (USD, exact). Only
finished requests have usage rows: requests refused before reaching an upstream (4xx, 402,
429, 502 before the first byte) are not counted; "errors" are requests whose upstream failed
mid-stream (status "failed").
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Avg, Count, Max, Q, Sum
from django.utils import timezone

from apps.catalog.models import Deployment
from apps.ledger.money import format_usd
from apps.metering.models import Status, UsageRecord
from apps.tenants.models import Organization

TOP_ORGANIZATIONS = 10
BREAKDOWN_DAYS = 30
HEALTH_DAYS = 1
PERCENT = Decimal("0.01")


@dataclass(frozen=True)
class Window:
    """Figures for requests that started at or after ``since``; cost in USD."""

    key: str
    label: str
    since: datetime
    requests: int
    prompt_tokens: int
    completion_tokens: int
    revenue: Decimal
    errors: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def revenue_usd(self) -> str:
        return format_usd(self.revenue)

    @property
    def error_rate(self) -> Decimal:
        """Percent of requests with status "failed", two decimals (half up)."""
        return percent(self.errors, self.requests)


@dataclass(frozen=True)
class Overview:
    now: datetime
    windows: list[Window]
    models: list[dict[str, Any]]
    organizations: list[dict[str, Any]]
    deployments: list[dict[str, Any]]


def percent(part: int, whole: int) -> Decimal:
    if not whole:
        return Decimal("0.00")
    return (Decimal(part) * 100 / Decimal(whole)).quantize(PERCENT, rounding=ROUND_HALF_UP)


def window_starts(now: datetime) -> list[tuple[str, str, datetime]]:
    """(key, label, start) of today (since midnight, server time zone), 7 and 30 days."""
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        ("today", "Today", midnight),
        ("7d", "Last 7 days", now - timedelta(days=7)),
        ("30d", "Last 30 days", now - timedelta(days=30)),
    ]


def overview(now: datetime | None = None) -> Overview:
    """Every figure of the overview page, as of ``now``."""
    now = now or timezone.now()
    return Overview(
        now=now,
        windows=_windows(now),
        models=_by_model(now - timedelta(days=BREAKDOWN_DAYS)),
        organizations=_top_organizations(now - timedelta(days=BREAKDOWN_DAYS)),
        deployments=_deployment_health(now - timedelta(days=HEALTH_DAYS)),
    )


def _windows(now: datetime) -> list[Window]:
    starts = window_starts(now)
    aggregates: dict[str, Any] = {}
    for key, _, since in starts:
        in_window = Q(started_at__gte=since)
        aggregates[f"{key}_requests"] = Count("pk", filter=in_window)
        aggregates[f"{key}_prompt"] = Sum("prompt_tokens", filter=in_window)
        aggregates[f"{key}_completion"] = Sum("completion_tokens", filter=in_window)
        aggregates[f"{key}_revenue"] = Sum("cost", filter=in_window)
        aggregates[f"{key}_errors"] = Count("pk", filter=in_window & Q(status=Status.FAILED))
    earliest = min(since for _, _, since in starts)
    row = UsageRecord.objects.filter(started_at__gte=earliest).aggregate(**aggregates)
    return [
        Window(
            key=key,
            label=label,
            since=since,
            requests=row[f"{key}_requests"],
            prompt_tokens=row[f"{key}_prompt"] or 0,
            completion_tokens=row[f"{key}_completion"] or 0,
            revenue=row[f"{key}_revenue"] or Decimal(0),
            errors=row[f"{key}_errors"],
        )
        for key, label, since in starts
    ]


def _totals() -> dict[str, Any]:
    return {
        "requests": Count("pk"),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "revenue": Sum("cost"),
        "errors": Count("pk", filter=Q(status=Status.FAILED)),
    }


def _by_model(since: datetime) -> list[dict[str, Any]]:
    rows = (
        UsageRecord.objects.filter(started_at__gte=since)
        .values("model")
        .annotate(**_totals())
        .order_by("-revenue", "model")
    )
    return [_with_rate(row) for row in rows]


def _top_organizations(since: datetime) -> list[dict[str, Any]]:
    """Grouped by id alone (no join over the usage rows); the names of the top ones after."""
    rows = list(
        UsageRecord.objects.filter(started_at__gte=since)
        .values("organization_id")
        .annotate(**_totals())
        .order_by("-revenue", "organization_id")[:TOP_ORGANIZATIONS]
    )
    names = dict(
        Organization.objects.filter(pk__in=[row["organization_id"] for row in rows]).values_list(
            "pk", "name"
        )
    )
    for row in rows:
        row["name"] = names.get(row["organization_id"], "")
    return [_with_rate(row) for row in rows]


def _deployment_health(since: datetime) -> list[dict[str, Any]]:
    rows = list(
        UsageRecord.objects.filter(started_at__gte=since)
        .values("deployment_id")
        .annotate(
            requests=Count("pk"),
            errors=Count("pk", filter=Q(status=Status.FAILED)),
            cancelled=Count("pk", filter=Q(status=Status.CANCELLED)),
            avg_latency_ms=Avg("latency_ms"),
            max_latency_ms=Max("latency_ms"),
            avg_ttft_ms=Avg("ttft_ms"),
        )
        .order_by("deployment_id")
    )
    names = {
        row.pk: str(row)
        for row in Deployment.objects.filter(
            pk__in=[r["deployment_id"] for r in rows]
        ).select_related("model", "provider")
    }
    for row in rows:
        row["name"] = names.get(row["deployment_id"], "(deleted deployment)")
        row["error_rate"] = percent(row["errors"], row["requests"])
        for name in ("avg_latency_ms", "avg_ttft_ms"):
            row[name] = None if row[name] is None else round(row[name])
    return rows


def _with_rate(row: dict[str, Any]) -> dict[str, Any]:
    row["tokens"] = (row["prompt_tokens"] or 0) + (row["completion_tokens"] or 0)
    row["revenue_usd"] = format_usd(row["revenue"] or Decimal(0))
    row["error_rate"] = percent(row["errors"], row["requests"])
    return row
