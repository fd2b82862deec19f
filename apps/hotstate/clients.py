"""The synchronous Redis client, with short timeouts, so a dead Redis never hangs a caller.

The gateway's hot path uses its own pipelined connections (apps.hotstate.pipelined_redis).
"""

from functools import cache

import redis
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
