"""`/healthz` (the process answers) and `/readyz` (PostgreSQL and Redis answer)."""

import asyncio

import orjson
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from redis.exceptions import RedisError

from apps.gateway.asgi_io import JSON_HEADERS, Send, send_response
from apps.gateway.state import GatewayState

CHECK_TIMEOUT_S = 2.0


async def healthz(send: Send) -> None:
    await send_response(send, 200, b'{"status":"ok"}', JSON_HEADERS)


def _ping_database() -> None:
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _check(name: str, probe: object) -> str | None:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)  # type: ignore[arg-type]
    except (Exception, TimeoutError):
        return name
    return None


async def readyz(send: Send, state: GatewayState) -> None:
    """200 when both answer; 503 naming what is down otherwise."""
    down = [
        name
        for name in await asyncio.gather(
            _check("postgresql", sync_to_async(_ping_database)()),
            _check("redis", _ping_redis(state)),
        )
        if name
    ]
    status = 503 if down else 200
    body = {"status": "unavailable" if down else "ready", "down": down}
    await send_response(send, status, orjson.dumps(body), JSON_HEADERS)


async def _ping_redis(state: GatewayState) -> None:
    try:
        await state.redis.ping()
    except RedisError as error:
        raise ConnectionError(str(error)) from None
