"""Build usage events and put them on the stream the way the gateway does."""

from collections.abc import Iterable
from decimal import Decimal

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.metering.events import UsageEvent, UsageStatus

STARTED_AT_MS = 1_790_000_000_000


def usage_event(
    org_id: int,
    key_id: int,
    request_id: str,
    *,
    cost: Decimal = Decimal("0.0000123400"),
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
) -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        org_id=org_id,
        key_id=key_id,
        model="default",
        deployment_id=7,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        input_price_per_mtok=Decimal("0.1000000000"),
        output_price_per_mtok=Decimal("0.4000000000"),
        cost=cost,
        status=UsageStatus.OK,
        stream=True,
        started_at_ms=STARTED_AT_MS,
        finished_at_ms=STARTED_AT_MS + 1234,
        ttft_ms=56,
    )


def publish(events: Iterable[UsageEvent], chunk: int = 5000) -> None:
    """XADD each event's fields to the usage stream, pipelined."""
    client = sync_redis()
    pipe = client.pipeline(transaction=False)
    for count, event in enumerate(events, start=1):
        pipe.xadd(keyspace.USAGE_STREAM, event.to_fields())
        if count % chunk == 0:
            pipe.execute()
    pipe.execute()


def publish_raw(fields: dict[str, str]) -> None:
    sync_redis().xadd(keyspace.USAGE_STREAM, fields)
