"""Redis clients with short timeouts, so a dead Redis never hangs a request."""

from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings


def _client_options() -> dict[str, object]:
    timeout = settings.REDIS_TIMEOUT_S
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry_on_timeout": False,
        "health_check_interval": 30,
    }


@cache
def sync_redis() -> redis.Redis:
    """The process-wide synchronous client, for services, commands and Celery tasks."""
    return redis.Redis.from_url(settings.REDIS_URL, **_client_options())


def new_async_redis(*, patient: bool = False) -> aioredis.Redis:
    """A new asyncio client; the gateway makes one per event loop at startup.

    Its pool is bounded: under a burst, requests wait (up to the timeout) for one of
    REDIS_MAX_CONNECTIONS connections instead of each opening its own. A `patient` client
    (settlement, after the answer was sent) waits up to REDIS_SETTLE_TIMEOUT_S instead.
    """
    options = _client_options()
    timeout = settings.REDIS_SETTLE_TIMEOUT_S if patient else settings.REDIS_TIMEOUT_S
    if patient:
        options["socket_timeout"] = timeout
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=timeout,
        **options,
    )
    return aioredis.Redis(connection_pool=pool)
