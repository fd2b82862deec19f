"""What one gateway worker process holds: connection pools and caches, made at startup."""

import asyncio
import gc
from dataclasses import dataclass, field

from django.conf import settings

from apps.gateway import tokens
from apps.gateway.admission import SCRIPT_LOADS, Admission
from apps.gateway.catalog_cache import CatalogCache
from apps.gateway.key_cache import KeyCache
from apps.gateway.last_used import LastUsedMarks
from apps.gateway.upstream import UpstreamClient
from apps.hotstate.pipelined_redis import PipelinedRedis


@dataclass
class GatewayState:
    redis: PipelinedRedis  # admission, readiness and last-use marks (REDIS_TIMEOUT_S)
    admission: Admission
    keys: KeyCache
    catalog: CatalogCache
    upstream: UpstreamClient
    last_used: LastUsedMarks
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def create(cls) -> "GatewayState":
        client = gateway_redis(settings.REDIS_TIMEOUT_S)
        state = cls(
            redis=client,
            admission=Admission(
                client,
                gateway_redis(settings.REDIS_SETTLE_TIMEOUT_S),
                fail_open=settings.RATE_LIMIT_FAIL_OPEN,
                min_answer_tokens=settings.GATEWAY_MIN_ANSWER_TOKENS,
                hold_lifetime_s=settings.GATEWAY_HOLD_LIFETIME_S,
            ),
            keys=KeyCache(settings.GATEWAY_KEY_CACHE_TTL_S),
            catalog=CatalogCache(settings.GATEWAY_CATALOG_CACHE_TTL_S),
            upstream=UpstreamClient(settings.GATEWAY_CONNECT_TIMEOUT_S),
            last_used=LastUsedMarks(client),
        )
        state.background.append(asyncio.create_task(state.last_used.run()))
        tokens.encoding()  # load the tokenizer now, not during the first request
        tune_garbage_collection()
        return state

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await self.last_used.flush()
        await self.upstream.close()
        await self.admission.close()
        await self.redis.aclose()


def gateway_redis(timeout_s: float) -> PipelinedRedis:
    """One pipelined connection of this worker to REDIS_URL, with the Lua scripts loaded."""
    return PipelinedRedis.from_url(
        settings.REDIS_URL,
        timeout_s=timeout_s,
        connect_timeout_s=settings.REDIS_TIMEOUT_S,
        on_connect=SCRIPT_LOADS,
    )


YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_garbage_collection() -> None:
    """Move every object alive now (Django, the apps, the tokenizer: ~120,000) out of the
    cyclic garbage collector's reach. Without this, each full collection walked them all and
    paused the event loop for 75-120 ms on this machine, stalling every stream of the worker
    (docs/performance.md). Then collect the youngest generation after 50,000 net allocations
    instead of 700: with 32 requests in flight the default ran a collection every ~28 requests
    that found no garbage (200 requests left no reference cycle, gc.DEBUG_SAVEALL): ~1.7 %
    of the worker's CPU at c=32, 44 µs per request and gen-1 pauses of up to 12 ms at c=256
    (now 1.3 µs, 2.6 ms). Real cycles (error paths) wait a little longer, bounded by that
    count."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
