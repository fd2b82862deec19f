"""Usage rows written straight to PostgreSQL, the way ingest stores them."""

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count

from apps.keys.models import APIKey
from apps.metering.models import Status, UsageRecord

_ids = count(1)


def usage_row(
    key: APIKey,
    started_at: datetime,
    prompt_tokens: int = 1000,
    completion_tokens: int = 200,
    *,
    model: str = "default",
    input_price: str = "0.10",
    output_price: str = "0.40",
    cost: str | None = None,
    status: str = Status.OK,
    deployment_id: int = 7,
    latency_ms: int = 800,
    ttft_ms: int | None = 120,
) -> UsageRecord:
    """An unsaved row; ``cost`` defaults to the exact price times tokens."""
    input_p, output_p = Decimal(input_price), Decimal(output_price)
    exact = (prompt_tokens * input_p + completion_tokens * output_p) / 1_000_000
    return UsageRecord(
        request_id=f"req-{next(_ids):08d}",
        organization_id=key.organization_id,
        key=key,
        model=model,
        deployment_id=deployment_id,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        input_price_per_mtok=input_p,
        output_price_per_mtok=output_p,
        cost=Decimal(cost) if cost is not None else exact,
        status=status,
        stream=True,
        started_at=started_at,
        finished_at=started_at + timedelta(milliseconds=latency_ms),
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
    )


def store(rows: list[UsageRecord]) -> list[UsageRecord]:
    return UsageRecord.objects.bulk_create(rows)
