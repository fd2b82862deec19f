"""Reads of metered usage: stored rows and events still waiting in the Redis stream."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db.models import Count, Q, QuerySet, Sum

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.ledger.money import quantize_usd
from apps.metering.models import UsageRecord
from apps.tenants.models import Organization

SCAN_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class UsageTotals:
    charged_rows: int  # rows with a non-zero cost: each has exactly one usage ledger entry
    cost: Decimal  # USD, sum over all rows


@dataclass(frozen=True, slots=True)
class StreamBacklog:
    """Usage events still in the stream (pending in the group or never delivered)."""

    entries: int
    cost: Decimal  # USD


def usage_records(
    organization: Organization,
    *,
    key: int | None = None,
    model: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[UsageRecord]:
    """The organization's usage rows matching every given filter."""
    records = UsageRecord.objects.filter(organization=organization)
    conditions = {
        "key_id": key,
        "model": model,
        "status": status,
        "started_at__gte": since,
        "started_at__lt": until,
    }
    return records.filter(
        **{name: value for name, value in conditions.items() if value is not None}
    )


def usage_totals(organization: Organization) -> UsageTotals:
    """How many of the organization's usage rows cost something, and what they all cost."""
    totals = UsageRecord.objects.filter(organization=organization).aggregate(
        charged=Count("pk", filter=~Q(cost=0)), cost=Sum("cost")
    )
    return UsageTotals(totals["charged"], quantize_usd(totals["cost"] or Decimal(0)))


def stream_backlog_by_org() -> dict[int, StreamBacklog]:
    """Events not yet ingested, per organization id, read from the stream.

    Ingest deletes entries from the stream when it acknowledges them, so every entry still in
    it is either pending in the consumer group or not yet delivered. An entry whose batch was
    committed but not yet acknowledged is counted here too: the figure is exact only while
    ingest is quiet. Entries too broken to read are left out (ingest dead-letters them)."""
    client = sync_redis()
    counts: defaultdict[int, int] = defaultdict(int)
    costs: defaultdict[int, Decimal] = defaultdict(Decimal)
    start = "-"
    while True:
        chunk = client.xrange(keyspace.USAGE_STREAM, min=start, count=SCAN_CHUNK)
        for _, fields in chunk:
            parsed = _org_and_cost(fields)
            if parsed is not None:
                counts[parsed[0]] += 1
                costs[parsed[0]] += parsed[1]
        if len(chunk) < SCAN_CHUNK:
            break
        start = "(" + chunk[-1][0].decode()
    return {org_id: StreamBacklog(counts[org_id], costs[org_id]) for org_id in counts}


def _org_and_cost(fields: dict[bytes, bytes]) -> tuple[int, Decimal] | None:
    try:
        org_id = int(fields[b"org_id"])
        cost = Decimal(fields[b"cost"].decode())
    except (KeyError, ValueError, InvalidOperation):
        return None
    return (org_id, cost) if cost.is_finite() else None
