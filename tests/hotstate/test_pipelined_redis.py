"""The gateway's pipelined Redis client against a real Redis: replies reach the right callers,
errors keep the connection, a lost or silent server fails fast and is reconnected to."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.gateway.admission import ADMIT_SCRIPT, SCRIPT_LOADS
from apps.hotstate.clients import sync_redis
from apps.hotstate.pipelined_redis import PipelinedRedis, RedisAddress
from tests.support.loopback import LoopbackServer
from tests.support.redis_server import PrivateRedis

# Busy-waits inside Redis for ARGV[1] milliseconds, then answers "slow".
SLOW_SCRIPT = """
local start = redis.call('TIME')
local t0 = tonumber(start[1]) * 1000 + tonumber(start[2]) / 1000
repeat
  local now = redis.call('TIME')
until tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000 - t0 >= tonumber(ARGV[1])
return 'slow'
"""


def run(scenario: Callable[[PipelinedRedis], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        client = PipelinedRedis.from_url(settings.REDIS_URL, timeout_s=2, **options)
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_concurrent_callers_get_their_own_replies_over_one_connection():
    async def scenario(client: PipelinedRedis) -> tuple[list, list, set]:
        await client.ping()
        echoes = [client.execute("ECHO", f"caller-{i}") for i in range(500)]
        counts = [client.execute("INCR", "pipelined:counter") for _ in range(500)]
        replies = await asyncio.gather(*echoes, *counts)
        ids = set(await asyncio.gather(*(client.execute("CLIENT", "ID") for _ in range(50))))
        return replies[:500], replies[500:], ids

    echoes, counts, connection_ids = run(scenario)
    assert echoes == [f"caller-{i}".encode() for i in range(500)]
    assert sorted(counts) == list(range(1, 501))
    assert len(connection_ids) == 1  # every command went over the same connection
    assert sync_redis().get("pipelined:counter") == b"500"


def test_error_replies_raise_and_the_connection_keeps_serving():
    async def scenario(client: PipelinedRedis) -> tuple[Any, ...]:
        await client.execute("SET", "pipelined:text", "abc")
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await client.execute("LPUSH", "pipelined:text", "x")
        with pytest.raises(NoScriptError):
            await client.execute("EVALSHA", "0" * 40, 0)
        with pytest.raises(ResponseError, match="not an integer"):
            await client.execute_many([("INCR", "pipelined:text"), ("SET", "pipelined:after", 1)])
        return await client.execute("GET", "pipelined:text"), await client.execute("CLIENT", "ID")

    text, _ = run(scenario)
    assert text == b"abc"
    assert sync_redis().get("pipelined:after") == b"1"  # the pipeline ran to its end


def test_pipeline_replies_come_back_in_order():
    async def scenario(client: PipelinedRedis) -> list:
        return await client.execute_many(
            [("SET", "pipelined:a", 1), ("INCRBY", "pipelined:a", 41), ("GET", "pipelined:a")]
        )

    assert run(scenario) == [b"OK", 42, b"42"]


def test_connection_setup_selects_the_database_and_loads_the_scripts():
    sync_redis().script_flush()
    database = RedisAddress.from_url(settings.REDIS_URL).db
    assert database != 0  # the test settings use their own database

    async def scenario(client: PipelinedRedis) -> Any:
        await client.execute("SET", "pipelined:where", "here")
        return await client.execute("SCRIPT", "EXISTS", ADMIT_SCRIPT.sha)

    assert run(scenario, on_connect=SCRIPT_LOADS) == [1]
    assert sync_redis().get("pipelined:where") == b"here"


def test_a_connection_killed_by_redis_is_replaced_by_the_next_command():
    async def scenario(client: PipelinedRedis) -> tuple[int, int, Any]:
        first = await client.execute("CLIENT", "ID")
        sync_redis().client_kill_filter(_id=first)
        await asyncio.sleep(0.05)
        second = await client.execute("CLIENT", "ID")
        return first, second, await client.execute("ECHO", "back")

    first, second, echoed = run(scenario)
    assert second != first
    assert echoed == b"back"


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1 << 16)
    writer.close()


async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1 << 16)
    await asyncio.sleep(30)


@pytest.mark.parametrize(
    ("server", "timeout_s", "error", "at_least_s"),
    [
        (hang_up, 5.0, RedisConnectionError, 0.0),  # the connection drops under them
        (say_nothing, 0.3, RedisTimeoutError, 0.25),  # the server goes silent
    ],
)
def test_every_waiting_caller_fails_at_once_when_the_server_fails(
    server, timeout_s, error, at_least_s
):
    async def scenario() -> tuple[list, float]:
        async with LoopbackServer(server) as port:
            client = PipelinedRedis(RedisAddress(port=port), timeout_s=timeout_s)
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(client.execute("PING") for _ in range(20)), return_exceptions=True
            )
            elapsed = time.monotonic() - started
            await client.aclose()
        return outcomes, elapsed

    outcomes, elapsed = asyncio.run(scenario())
    assert all(isinstance(outcome, error) for outcome in outcomes)
    assert at_least_s <= elapsed < 1.0


def test_a_server_that_is_down_is_reported_at_once():
    async def scenario() -> float:
        client = PipelinedRedis(RedisAddress(port=1), timeout_s=1)
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await client.execute("PING")
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.5


def test_a_caller_that_gives_up_does_not_shift_the_replies_of_others():
    async def scenario(client: PipelinedRedis) -> tuple[Any, Any]:
        slow = asyncio.ensure_future(client.execute("EVAL", SLOW_SCRIPT, 0, 100))
        await asyncio.sleep(0.01)  # sent, and Redis is busy with it
        slow.cancel()
        echoed = await client.execute("ECHO", "mine")
        return echoed, await client.execute("ECHO", "next")

    assert run(scenario) == (b"mine", b"next")


def test_a_password_protected_redis_is_logged_into_and_a_wrong_password_is_refused():
    server = PrivateRedis(password="s3cret")
    server.start()
    try:

        async def scenario(url: str) -> Any:
            client = PipelinedRedis.from_url(url, timeout_s=2)
            try:
                await client.execute("SET", "where", "db3")
                return await client.execute("GET", "where")
            finally:
                await client.aclose()

        assert asyncio.run(scenario(f"redis://:s3cret@127.0.0.1:{server.port}/3")) == b"db3"
        with pytest.raises(RedisConnectionError, match="refused the connection setup"):
            asyncio.run(scenario(f"redis://:wrong@127.0.0.1:{server.port}/3"))
        check = redis.Redis(port=server.port, password="s3cret", db=3)
        assert check.get("where") == b"db3"  # logged in, and the database was selected
        check.close()
    finally:
        server.stop()
