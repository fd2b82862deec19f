"""Usage rows and their ledger debits, written in bulk the way ingest leaves them."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from apps.ledger.money import quantize_usd
from apps.ledger.services import UsageDebit, post_usage_debits
from apps.metering.models import UsageRecord
from apps.tenants.models import Organization

# (model, USD per million input tokens, USD per million output tokens)
PRICES = [
    ("gpt-small", Decimal("0.15"), Decimal("0.60")),
    ("gpt-large", Decimal("2.5"), Decimal("10")),
    ("gpt-large", Decimal("2.0"), Decimal("8.0")),  # a price change within the period
    ("free-tier", Decimal(0), Decimal(0)),
]


@dataclass(frozen=True)
class ExpectedLine:
    requests: int
    input_tokens: int
    output_tokens: int
    amount: Decimal


def usage_rows(
    organization: Organization, count: int, start: datetime, span: timedelta, *, tag: str = "r"
) -> list[UsageRecord]:
    """`count` requests of the organization spread over [start, start + span)."""
    rows = []
    step = span / count
    for index in range(count):
        model, input_price, output_price = PRICES[index % len(PRICES)]
        prompt, completion = 50 + index * 37 % 4001, 1 + index * 13 % 997
        cost = quantize_usd((prompt * input_price + completion * output_price) / 1_000_000)
        started = start + step * index
        rows.append(
            UsageRecord(
                request_id=f"{tag}-{organization.pk}-{index}",
                organization=organization,
                key_id=1,
                model=model,
                deployment_id=1,
                prompt_tokens=prompt,
                completion_tokens=completion,
                input_price_per_mtok=input_price,
                output_price_per_mtok=output_price,
                cost=cost,
                status="ok",
                stream=False,
                started_at=started,
                finished_at=started + timedelta(seconds=1),
                latency_ms=1000,
            )
        )
    return rows


def ingest(rows: list[UsageRecord]) -> None:
    """Store the rows and post their debits, as the ingest pipeline does."""
    with transaction.atomic():
        UsageRecord.objects.bulk_create(rows, batch_size=5000)
        post_usage_debits(
            UsageDebit(row.organization_id, row.request_id, row.cost, row.model)
            for row in rows
            if row.cost > 0
        )


def expected_lines(rows: list[UsageRecord]) -> dict[tuple[str, Decimal, Decimal], ExpectedLine]:
    """What the invoice lines of these rows must be, computed here in Python."""
    sums: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for row in rows:
        line = sums[(row.model, row.input_price_per_mtok, row.output_price_per_mtok)]
        line[0] += 1
        line[1] += row.prompt_tokens
        line[2] += row.completion_tokens
        line[3] += row.cost
    return {key: ExpectedLine(*values) for key, values in sums.items()}
