"""Admission decisions per second: the gateway's own scripts and Redis client against a local
Redis.

    uv run python -m bench.bench_limiter [--redis redis://127.0.0.1:6379/14] [--seconds 3]

Each decision is one EVALSHA of apps/gateway/lua/admit.lua followed by settle.lua, sent as
the gateway sends them (apps.gateway.admission's scripts and key names, over the pipelined
client), with every limit active (key and organization buckets for requests and tokens, both
in-flight sets and a credit hold) or none configured (the script still checks the key
cut-off, the tenant epoch and the credit). Reported: admit+settle pairs/s at 1, 8 and 64
concurrent callers, and Redis' own time per script call (INFO commandstats), which bounds the
decisions one Redis core makes per second; then Redis' time per call of each script on its
own, with every limit on and with none.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import django
import redis

from bench.common import BENCH_ENV

os.environ.update(BENCH_ENV)
django.setup()

from apps.gateway.admission import (  # noqa: E402 - Django first
    ADMIT_SCRIPT,
    SCRIPT_LOADS,
    SETTLE_SCRIPT,
    admit_keys,
    settle_keys,
)
from apps.hotstate import keyspace  # noqa: E402
from apps.hotstate.pipelined_redis import PipelinedRedis  # noqa: E402

ORG, KEY = 999_999, 1
HUGE = 10**9
CREDIT_UNITS = 10**15  # 100,000 USD: below 2^53, exact in the scripts' Lua numbers


def admit_args(request_id: str, limited: bool) -> list[object]:
    limit = HUGE if limited else 0
    return [request_id, limit, limit, limit, limit, limit, limit,
            20, 100, 1, "20000", "4000", 0, 16, 900, 900, 0, 0, KEY]  # fmt: skip


async def pairs_per_second(
    client: PipelinedRedis, concurrency: int, seconds: float, limited: bool
) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    limit = HUGE if limited else 0

    async def caller(index: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            request_id = f"r{index}-{n}"
            n += 1
            await ADMIT_SCRIPT.run(client, admit_keys(ORG, KEY), admit_args(request_id, limited))
            keys = (*settle_keys(ORG), keyspace.settled_marker(ORG, request_id))
            args = [request_id, 40, limit, limit, 1000, KEY, limit, 960, 93]
            await SETTLE_SCRIPT.run(client, keys, args)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


async def measure(url: str, seconds: float) -> None:
    admin = redis.Redis.from_url(url)
    client = PipelinedRedis.from_url(url, timeout_s=5, on_connect=SCRIPT_LOADS)
    print(
        "| callers | limits | admit+settle pairs/s | Redis µs per script call (admit and settle) |"
    )
    print("|---:|---|---:|---:|")
    for limited in (True, False):
        for concurrency in (1, 8, 64):
            admin.flushdb()
            admin.set(keyspace.credit_available(ORG), CREDIT_UNITS)
            admin.config_resetstat()
            rate = await pairs_per_second(client, concurrency, seconds, limited)
            stats = admin.info("commandstats")
            calls = stats.get("cmdstat_evalsha", {})
            per_script = calls.get("usec_per_call", 0.0)
            print(
                f"| {concurrency} | {'all on' if limited else 'none'} | {rate:,.0f} "
                f"| {per_script:.1f} |"
            )
    print()
    print("| limits | Redis µs per admit.lua call | per settle.lua call |")
    print("|---|---:|---:|")
    for limited in (True, False):
        admit_us, settle_us = await per_script_times(client, admin, limited)
        print(f"| {'all on' if limited else 'none'} | {admit_us:.1f} | {settle_us:.1f} |")
    admin.flushdb()
    await client.aclose()


async def per_script_times(
    client: PipelinedRedis, admin: redis.Redis, limited: bool, batches: int = 20, size: int = 100
) -> tuple[float, float]:
    """Redis time per call of each script on its own: batches of admissions, then the
    settlements of the same requests (the best of three rounds of each)."""
    admin.flushdb()
    admin.set(keyspace.credit_available(ORG), CREDIT_UNITS)
    limit = HUGE if limited else 0
    times: dict[str, list[float]] = {"admit": [], "settle": []}
    for round_ in range(3):
        ids = [[f"t{round_}-{b}-{i}" for i in range(size)] for b in range(batches)]
        for script in ("admit", "settle"):
            admin.config_resetstat()
            for batch in ids:
                if script == "admit":
                    commands = [
                        ADMIT_SCRIPT.call(admit_keys(ORG, KEY), admit_args(rid, limited))
                        for rid in batch
                    ]
                else:
                    commands = [
                        SETTLE_SCRIPT.call(
                            (*settle_keys(ORG), keyspace.settled_marker(ORG, rid)),
                            [rid, 40, limit, limit, 1000, KEY, limit, 960, 93],
                        )
                        for rid in batch
                    ]
                await client.execute_many(commands)
            stats = admin.info("commandstats")["cmdstat_evalsha"]
            times[script].append(stats["usec_per_call"])
    return min(times["admit"]), min(times["settle"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--seconds", type=float, default=3.0)
    options = parser.parse_args()
    asyncio.run(measure(options.redis, options.seconds))


if __name__ == "__main__":
    main()
