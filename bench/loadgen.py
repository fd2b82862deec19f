"""Closed-loop asyncio load generator for OpenAI-compatible chat completions.

    uv run python -m bench.loadgen --url http://127.0.0.1:9190/v1/chat/completions \
        --model demo-small --concurrency 32 --seconds 10 [--stream] [--api-key KEY] \
        [--demo '{"completion_tokens": 8, "inter_token_ms": 0}'] [--client aiohttp]
    uv run python -m bench.loadgen --url ... --hold 2000 --ramp-per-s 400 --hold-s 6

Closed loop: N workers each send a request, wait for its whole answer, and send the next,
until the time is up; every latency is recorded. Streams also record the time to the first
event (TTFT) and count the SSE events. `--hold N` instead opens N slow streams at a fixed
rate, all timed to end together, and reports how many were open and error-free at once.
The HTTP client is bench.rawhttp (asyncio + httptools, the default: cheapest per request)
or aiohttp. Prints one JSON object; bench.run_gateway_bench drives these functions itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import orjson

from bench import rawhttp
from bench.common import Distribution
from bench.events import EventCounter, Outcome

PROMPT = [{"role": "user", "content": "Say hello in a few words."}]
ERROR_PAUSE_S = 0.01  # a failing worker waits this long so refusals do not spin the core
CLIENTS = ("raw", "aiohttp")

Call = Callable[[], Awaitable[Outcome]]
Tick = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: a chat completions URL, its key and model."""

    name: str
    url: str
    model: str
    api_key: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def body(self, *, stream: bool, demo: dict[str, Any]) -> bytes:
        body: dict[str, Any] = {"model": self.model, "messages": PROMPT, "demo": demo}
        if stream:
            body["stream"] = True
        return orjson.dumps(body)


# --- aiohttp client --------------------------------------------------------------------


def new_session(connections: int) -> aiohttp.ClientSession:
    """A client session holding up to `connections` keep-alive connections (0: no limit)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=None),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120),
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent",),
    )


async def aiohttp_once(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes, stream: bool
) -> Outcome:
    """Send one request with aiohttp, read the whole answer (counting stream events)."""
    outcome = Outcome(started=time.perf_counter())
    counter = EventCounter(outcome)
    try:
        async with session.post(url, data=body, headers=headers) as response:
            async for data in response.content.iter_any():
                counter.feed(data)
            if response.status != 200:
                return outcome.fail(f"http {response.status}")
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return outcome.fail(type(error).__name__)
    return outcome.succeed(stream=stream)


# --- callers ---------------------------------------------------------------------------


@asynccontextmanager
async def open_caller(
    target: Target, *, stream: bool, demo: dict[str, Any], client: str = "raw", connections: int = 0
) -> AsyncIterator[Call]:
    """A no-argument coroutine function sending the same request to `target` each time."""
    body = target.body(stream=stream, demo=demo)
    if client == "aiohttp":
        headers = target.headers()
        async with new_session(connections) as session:
            yield lambda: aiohttp_once(session, target.url, headers, body, stream)
        return
    raw = rawhttp.Client(target.url)
    payload = rawhttp.request_bytes(target.url, target.headers(), body)
    try:
        yield lambda: raw.call(payload, stream=stream)
    finally:
        raw.close()


@dataclass(slots=True)
class LoopResult:
    """The outcomes of a closed-loop run and how long it took."""

    wall_s: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.ok]

    def errors(self) -> dict[str, int]:
        return dict(Counter(o.error or "?" for o in self.outcomes if not o.ok))


async def closed_loop(call: Call, *, concurrency: int, seconds: float) -> LoopResult:
    """Run `concurrency` workers that repeat `call` until `seconds` have passed."""
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            outcome = await call()
            outcomes.append(outcome)
            if not outcome.ok:
                await asyncio.sleep(ERROR_PAUSE_S)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoopResult(wall_s=time.perf_counter() - start, outcomes=outcomes)


async def staggered_loop(
    call: Call,
    *,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    spread_s: float,
    on_measure: Callable[[], None] | None = None,
) -> LoopResult:
    """A closed loop whose workers start `spread_s / concurrency` apart, so that requests of
    equal length do not arrive in lockstep. Only requests started after `warmup_s` (at least
    `spread_s`) count; `on_measure` runs at that moment, and the result's wall time is from
    it to the end of the last request."""
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    measure_from = start + max(warmup_s, spread_s)
    deadline = measure_from + seconds

    async def worker(index: int) -> None:
        await asyncio.sleep(spread_s * index / concurrency)
        while time.perf_counter() < deadline:
            outcome = await call()
            if outcome.started >= measure_from:
                outcomes.append(outcome)
            if not outcome.ok:
                await asyncio.sleep(ERROR_PAUSE_S)

    async def mark() -> None:
        await asyncio.sleep(measure_from - time.perf_counter())
        if on_measure is not None:
            on_measure()

    await asyncio.gather(mark(), *(worker(i) for i in range(concurrency)))
    return LoopResult(wall_s=time.perf_counter() - measure_from, outcomes=outcomes)


def summarise_requests(result: LoopResult) -> dict[str, Any]:
    """Requests/s and latency percentiles (ms) of the successful requests."""
    ok = result.ok
    return {
        "requests": len(ok),
        "errors": len(result.outcomes) - len(ok),
        "error_kinds": result.errors(),
        "wall_s": result.wall_s,
        "rps": len(ok) / result.wall_s if result.wall_s else 0.0,
        "latency_ms": asdict(Distribution.of([o.latency * 1000 for o in ok])),
    }


def summarise_streams(result: LoopResult) -> dict[str, Any]:
    """Streams/s, TTFT and total-time percentiles (ms), and events relayed."""
    ok = result.ok
    summary = summarise_requests(result)
    summary["streams"] = summary.pop("requests")
    summary["streams_per_s"] = summary.pop("rps")
    summary["ttft_ms"] = asdict(Distribution.of([(o.ttft or 0.0) * 1000 for o in ok]))
    summary["chunks"] = sum(o.chunks for o in result.outcomes)
    summary["chunks_per_stream"] = summary["chunks"] / len(ok) if ok else 0.0
    return summary


# --- holding many slow streams ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldPlan:
    """Open `count` streams at `ramp_per_s`; each ends about `hold_s` after the last opened."""

    count: int
    ramp_per_s: float
    hold_s: float
    inter_token_ms: float

    @property
    def ramp_s(self) -> float:
        return self.count / self.ramp_per_s

    def tokens_for(self, opened_after_s: float) -> int:
        """Tokens a stream opened at this offset needs to last until the common end."""
        remaining_s = self.ramp_s + self.hold_s - opened_after_s
        return max(2, math.ceil(remaining_s * 1000 / self.inter_token_ms) + 1)


async def hold_streams(target: Target, plan: HoldPlan, on_tick: Tick | None = None) -> dict:
    """Open the plan's streams (one connection each), wait for all to end, report the peak."""
    client = rawhttp.Client(target.url)
    headers = target.headers()
    tasks: list[asyncio.Task[Outcome]] = []
    start = time.perf_counter()
    try:
        for index in range(plan.count):
            offset = index / plan.ramp_per_s
            await _sleep_until(start + offset, on_tick)
            demo = {
                "completion_tokens": plan.tokens_for(offset),
                "inter_token_ms": plan.inter_token_ms,
            }
            payload = rawhttp.request_bytes(
                target.url, headers, target.body(stream=True, demo=demo)
            )
            call = client.call(payload, stream=True, keep_alive=False)
            tasks.append(asyncio.create_task(call))
        outcomes = await _gather_ticking(tasks, on_tick)
    finally:
        client.close()
    return _hold_summary(plan, outcomes, time.perf_counter() - start)


async def _sleep_until(moment: float, on_tick: Tick | None) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    if on_tick is not None:
        on_tick()


async def _gather_ticking(tasks: list[asyncio.Task[Outcome]], on_tick: Tick | None) -> list:
    pending = set(tasks)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=0.25)
        if on_tick is not None:
            on_tick()
    return [task.result() for task in tasks]


def peak_open(outcomes: list[Outcome]) -> tuple[int, float]:
    """Most error-free streams open at once (first event seen, not ended), and when."""
    moments: list[tuple[float, int]] = []
    for outcome in outcomes:
        if outcome.ok and outcome.first_at is not None:
            moments.append((outcome.first_at, 1))
            moments.append((outcome.ended_at, -1))
    moments.sort(key=lambda item: (item[0], item[1]))
    open_now = best = 0
    best_at = 0.0
    for moment, change in moments:
        open_now += change
        if open_now > best:
            best, best_at = open_now, moment
    return best, best_at


def _hold_summary(plan: HoldPlan, outcomes: list[Outcome], wall_s: float) -> dict[str, Any]:
    ok = [o for o in outcomes if o.ok]
    peak, _ = peak_open(outcomes)
    return {
        "planned": plan.count,
        "ramp_per_s": plan.ramp_per_s,
        "hold_s": plan.hold_s,
        "inter_token_ms": plan.inter_token_ms,
        "completed_ok": len(ok),
        "errors": len(outcomes) - len(ok),
        "error_kinds": dict(Counter(o.error or "?" for o in outcomes if not o.ok)),
        "peak_open_ok": peak,
        "ttft_ms": asdict(Distribution.of([(o.ttft or 0.0) * 1000 for o in ok])),
        "chunks": sum(o.chunks for o in outcomes),
        "wall_s": wall_s,
    }


# --- command line ----------------------------------------------------------------------


async def _run_cli(args: argparse.Namespace) -> dict[str, Any]:
    target = Target("cli", args.url, args.model, args.api_key)
    if args.hold:
        plan = HoldPlan(args.hold, args.ramp_per_s, args.hold_s, args.inter_token_ms)
        return await hold_streams(target, plan)
    demo = json.loads(args.demo)
    opened = open_caller(target, stream=args.stream, demo=demo, client=args.client)
    async with opened as call:
        result = await closed_loop(call, concurrency=args.concurrency, seconds=args.seconds)
    return summarise_streams(result) if args.stream else summarise_requests(result)


def run(main: Awaitable[Any]) -> Any:
    """Run a coroutine on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="full chat completions URL")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--model", default="default")
    parser.add_argument("--client", choices=CLIENTS, default="raw")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--demo", default='{"completion_tokens": 8, "inter_token_ms": 0}')
    parser.add_argument("--hold", type=int, default=0, help="open this many slow streams")
    parser.add_argument("--ramp-per-s", type=float, default=400.0)
    parser.add_argument("--hold-s", type=float, default=6.0)
    parser.add_argument("--inter-token-ms", type=float, default=2000.0)
    print(json.dumps(run(_run_cli(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
