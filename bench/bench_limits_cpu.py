"""What rate limiting costs a gateway worker's CPU: limits on versus off, interleaved batch by
batch in one process, so a drifting machine slows both arms alike.

    uv run python -m bench.bench_limits_cpu [--rounds 40] [--batch 400] [--concurrency 32]
    valgrind --tool=callgrind .venv/bin/python -m bench.bench_limits_cpu --only on \
        --requests 1200 --concurrency 2        # and 200; the same for off (see below)

The gateway's throughput is what one worker's core serves: 1 / (its CPU per request) when it
is the bottleneck. bench.bench_limits_ab measures requests/s end to end, which on a 2-core
machine also counts Redis' extra work on the core it shares with the load generator and the
upstream, and which a VM whose speed changes by up to 2x within seconds blurs. Here the real
stack serves each request: uvicorn's own HTTP protocol (httptools) parses the request and
writes the answer, config.asgi's application (ProxyHeadersMiddleware, GatewayApp) handles it
against the real Redis and the demo upstream over TCP; only the client socket is left out (an
in-memory transport, the same bytes for both arms). The two keys are the ones
bench_limits_ab uses ("off": no limits; "on": every limit checked and taken from, never
reached). Each round runs one batch per arm (order alternating); reported: the median CPU
time of this process per request per arm, the median of the per-round differences, and the
share of the "off" CPU that limiting adds. Writes bench/results/limits-cpu-<stamp>.json.

`--only ARM --requests N` serves N requests of one arm and exits, for counting instructions
with callgrind (which no drift of the machine changes): the difference of the totals of
N=1200 and N=200, divided by 1000, is one arm's instructions per request (start-up cancels).
The in-memory client's parsing of the answer (httptools) is counted too: about 2,400
instructions per request more for the six headers of the "on" arm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from contextlib import ExitStack
from typing import Any

import httptools

from bench.common import BENCH_ENV, RESULTS_DIR, free_port
from bench.loadgen import Target
from bench.phases import SHORT_ANSWER
from bench.processes import start_demo_upstream
from bench.rawhttp import request_bytes
from bench.run_gateway_bench import GATEWAY_CORE, LOAD_CORE, prepare_database

ADDRESS = ("127.0.0.1", 8000)


class MemoryTransport(asyncio.Transport):
    """The client side of one keep-alive connection, in memory: collects the server's answer
    and wakes the caller when it is complete."""

    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[None] | None = None
        self.status = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ADDRESS if name in ("peername", "sockname") else default

    def expect_answer(self) -> asyncio.Future[None]:
        self._done = asyncio.get_running_loop().create_future()
        return self._done

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._parser.feed_data(bytes(data))

    def on_message_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=400, help="requests per arm per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", choices=("off", "on"), help="serve one arm's requests, once")
    parser.add_argument("--requests", type=int, default=1200, help="with --only")
    args = parser.parse_args()
    os.sched_setaffinity(0, {GATEWAY_CORE})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = RESULTS_DIR / f"logs-limits-cpu-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        upstream = start_demo_upstream(free_port(), LOAD_CORE, log_dir)
        stack.callback(upstream.stop)
        setup = prepare_database(upstream.url, limits=False)
        rounds = _serve_in_this_process(setup, args)
    if args.only:
        print(f"served {args.requests} requests of arm {args.only}: {rounds[0]['non_200']} not 200")
        return
    summary = _summarise(rounds)
    out = RESULTS_DIR / f"limits-cpu-{stamp}.json"
    out.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
    print(_markdown(summary, args))
    print(f"\nwritten: {out}")


def _serve_in_this_process(setup: dict[str, str], args: argparse.Namespace) -> list[dict]:
    os.environ.update(BENCH_ENV)
    import uvicorn
    import uvloop

    from config.asgi import application

    config = uvicorn.Config(application, http="httptools", lifespan="off", access_log=False)
    config.load()
    url = "http://gateway/v1/chat/completions"
    requests = {
        arm: _request(Target("gateway", url, setup["model"], setup[key]))
        for arm, key in (("off", "api_key"), ("on", "api_key_limited"))
    }
    return uvloop.run(_rounds(config, requests, args))


def _request(target: Target) -> bytes:
    body = target.body(stream=False, demo=SHORT_ANSWER)
    return request_bytes(target.url, target.headers(), body)


async def _rounds(config: Any, requests: dict[str, bytes], args: argparse.Namespace) -> list:
    from uvicorn.server import ServerState

    state = ServerState()
    protocols = []
    for _ in range(args.concurrency):
        transport = MemoryTransport()
        protocol = config.http_protocol_class(config=config, server_state=state, app_state={})
        protocol.connection_made(transport)
        protocols.append((protocol, transport))
    if args.only:
        _, statuses = await _batch(protocols, requests[args.only], args.requests)
        return [{"arm": args.only, "non_200": sum(1 for s in statuses if s != 200)}]
    for request in requests.values():  # warm up: caches, connections to Redis and upstream
        await _batch(protocols, request, args.batch)
    records = []
    for index in range(args.rounds):
        for arm in ("off", "on") if index % 2 == 0 else ("on", "off"):
            cpu_us, statuses = await _batch(protocols, requests[arm], args.batch)
            records.append({"round": index, "arm": arm, "cpu_us_per_request": cpu_us,
                            "non_200": sum(1 for s in statuses if s != 200)})  # fmt: skip
    return records


async def _batch(protocols: list, request: bytes, count: int) -> tuple[float, list[int]]:
    """Serve `count` requests over the connections, each carrying one at a time."""
    remaining = count
    statuses: list[int] = []

    async def connection(protocol: Any, transport: MemoryTransport) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            answered = transport.expect_answer()
            protocol.data_received(request)
            await answered
            statuses.append(transport.status)

    started = time.process_time()
    await asyncio.gather(*(connection(p, t) for p, t in protocols))
    return (time.process_time() - started) * 1e6 / count, statuses


def _summarise(records: list[dict[str, Any]]) -> dict[str, float]:
    by_arm = {
        arm: [r["cpu_us_per_request"] for r in records if r["arm"] == arm] for arm in ("off", "on")
    }
    pairs: dict[int, dict[str, float]] = {}
    for record in records:
        pairs.setdefault(record["round"], {})[record["arm"]] = record["cpu_us_per_request"]
    differences = sorted(pair["on"] - pair["off"] for pair in pairs.values())
    off = statistics.median(by_arm["off"])
    added = statistics.median(differences)
    quartiles = statistics.quantiles(differences, n=4)
    return {
        "off_us": off,
        "on_us": statistics.median(by_arm["on"]),
        "added_us": added,
        "added_us_q1": quartiles[0],
        "added_us_q3": quartiles[2],
        "added_percent": 100 * added / off,
        "throughput_change_percent": 100 * (off / (off + added) - 1),
        "non_200": sum(r["non_200"] for r in records),
    }


def _markdown(s: dict[str, float], args: argparse.Namespace) -> str:
    return "\n".join(
        [
            f"Gateway worker CPU per request, limits off vs on, c={args.concurrency}, "
            f"{args.rounds} interleaved rounds of {args.batch} requests per arm",
            "",
            "| off µs/req | on µs/req | added µs/req (median of pairs, IQR) | added CPU "
            "| worker throughput | non-200 |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {s['off_us']:.1f} | {s['on_us']:.1f} | {s['added_us']:+.1f} "
            f"({s['added_us_q1']:+.1f} to {s['added_us_q3']:+.1f}) | {s['added_percent']:+.1f} % "
            f"| {s['throughput_change_percent']:+.1f} % | {s['non_200']:.0f} |",
        ]
    )


if __name__ == "__main__":
    main()
