"""Admission decisions per second: the real admit.lua against a local Redis.

    uv run python bench/bench_limiter.py [--redis redis://127.0.0.1:6379/14] [--seconds 5]

Each decision is one EVALSHA of apps/gateway/lua/admit.lua with every limit active (key and
organization buckets for requests and tokens, both in-flight sets and a credit hold), followed
in the same run by the settle script, as the gateway does. Reported: decisions/s at 1, 8 and
64 concurrent callers (one asyncio client, pooled connections), and the same with no limits
configured (the script still checks the key cut-off and the credit), plus Redis' own CPU time
per script call (INFO commandstats), which bounds decisions/s per Redis core.
"""

import argparse
import asyncio
import time
from pathlib import Path

import redis.asyncio as aioredis

LUA = Path(__file__).resolve().parents[1] / "apps" / "gateway" / "lua"
TAG = "{o:999999}"
KEYS = [
    f"{TAG}:kna:1", f"{TAG}:epoch", f"{TAG}:buckets", f"{TAG}:inflight:k:1", f"{TAG}:inflight:o",
    f"{TAG}:credit", f"{TAG}:holds", f"{TAG}:hold_deadlines",
]  # fmt: skip
SETTLE_KEYS = KEYS[2:]
HUGE = 10**9


def admit_args(request_id: str, limited: bool) -> list[object]:
    limit = HUGE if limited else 0
    return [request_id, limit, limit, limit, limit, limit, limit,
            20, 100, 1, "20000", "4000", 0, 16, 900, 900, 0, 0, 1]  # fmt: skip


async def run(client: aioredis.Redis, concurrency: int, seconds: float, limited: bool) -> float:
    admit = client.register_script((LUA / "admit.lua").read_text())
    settle = client.register_script((LUA / "settle.lua").read_text())
    await client.set(KEYS[5], 10**18)
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller(index: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            request_id = f"r{index}-{n}"
            n += 1
            await admit(keys=KEYS, args=admit_args(request_id, limited))
            await settle(
                keys=[*SETTLE_KEYS, f"{TAG}:settled:{request_id}"],
                args=[request_id, 0, HUGE, HUGE, 1000, 1],
            )
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--seconds", type=float, default=5)
    options = parser.parse_args()
    client = aioredis.Redis.from_url(options.redis)
    print("| callers | limits | admit+settle pairs/s (client-bound) | Redis CPU per script call |")
    print("|---|---|---|---|")
    for limited in (True, False):
        for concurrency in (1, 8, 64):
            await client.config_resetstat()
            rate = await run(client, concurrency, options.seconds, limited)
            stats = await client.info("commandstats")
            per_call = stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0)
            print(
                f"| {concurrency} | {'all on' if limited else 'none'} | {rate:,.0f} "
                f"| {per_call} µs |"
            )
    await client.delete(*KEYS)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
