"""What rate limiting costs the gateway: limits on versus off, interleaved, in one run.

    uv run python -m bench.bench_limits_ab [--rounds 6] [--seconds 5] [--concurrency 32]

One demo upstream (core 1) and one gateway worker (core 0), started once. Two API keys of two
organizations: "off" has no plan and no key limits (admission still checks revocation and
credit and holds the cost); "on" has a plan and key limits for requests, tokens and requests
in flight that are checked (and taken from) on every request but never reached. Each round
runs the same short non-streaming load (wrk, closed loop) once per key, alternating which goes
first, so drift of a shared machine falls on both arms. Reported per arm: the median over the
rounds of req/s, p50, p99, gateway CPU per request and Redis CPU per request, the difference
of the medians, and the median (and range) of the per-round differences. Writes
bench/results/limits-ab-<stamp>.json.

Redis does the limiter's work, on its own thread: left unpinned, the scheduler puts it on the
gateway's core part of the time and the figures then measure Redis and the gateway sharing a
core. With --pin-redis (default) the local redis-server is moved to the load core for the run
(as when Redis runs on its own machine) and put back afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from bench import phases
from bench.common import RESULTS_DIR, free_port, pid_of, raise_open_files_limit
from bench.loadgen import Target, run
from bench.phases import Bench
from bench.processes import pin_for_the_run, start_demo_upstream, start_gateway, worker_pid
from bench.run_gateway_bench import (
    DIRECT_MODEL,
    GATEWAY_CORE,
    LOAD_CORE,
    ROOT,
    gateway_env,
    prepare_database,
    settings_from,
)

FIGURES = (
    "requests_per_s",
    "p50_ms",
    "p99_ms",
    "gateway_cpu_ms_per_request",
    "redis_cpu_us_per_request",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per arm")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--pin-redis",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="move redis-server to the load core during the run",
    )
    args = parser.parse_args()
    base = settings_from(
        argparse.Namespace(
            generator="auto", profile=False, py_spy=None, quick=False, limits=False,
            hold_levels=None, hold_ramp_per_s=200.0, hold_inter_token_ms=2000.0,
            client="raw", retry_noisy=0, native=False, stream_start="staggered",
        )
    )  # fmt: skip
    settings = replace(base, request_s=args.seconds, warmup_s=1.0, settle_s=0.5)
    os.sched_setaffinity(0, {LOAD_CORE})
    raise_open_files_limit()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = RESULTS_DIR / f"logs-limits-ab-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        redis_pid = pid_of("redis-server")
        if args.pin_redis:
            pin_for_the_run(stack, redis_pid, LOAD_CORE)
        upstream = start_demo_upstream(free_port(), LOAD_CORE, log_dir)
        stack.callback(upstream.stop)
        setup = prepare_database(upstream.url, limits=False)
        gateway = start_gateway(free_port(), GATEWAY_CORE, log_dir, gateway_env(), ROOT)
        stack.callback(gateway.stop)
        url = gateway.url + "/v1/chat/completions"
        arms = {
            "off": Target("gateway", url, setup["model"], setup["api_key"]),
            "on": Target("gateway", url, setup["model"], setup["api_key_limited"]),
        }
        bench = Bench(
            settings=settings,
            direct=Target("direct", upstream.url + "/v1/chat/completions", DIRECT_MODEL),
            gateway=arms["off"],
            worker_pid=worker_pid(gateway),
            upstream_pid=upstream.pid,
            redis_pid=redis_pid,
            gateway_log=gateway.log_path,
            results_dir=RESULTS_DIR,
            stamp=stamp,
        )
        rounds = run(_rounds(bench, arms, args.rounds, args.concurrency))
    summary = _summarise(rounds)
    out = RESULTS_DIR / f"limits-ab-{stamp}.json"
    out.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
    print(_markdown(summary, args))
    print(f"\nwritten: {out}")


async def _rounds(
    bench: Bench, arms: dict[str, Target], count: int, concurrency: int
) -> list[dict[str, Any]]:
    records = []
    for index in range(count):
        order = ("off", "on") if index % 2 == 0 else ("on", "off")
        for arm in order:
            record = await phases.requests_phase(bench, arms[arm], concurrency)
            record.update(
                arm=arm,
                requests_per_s=record["rps"],
                p50_ms=record["latency_ms"]["p50"],
                p99_ms=record["latency_ms"]["p99"],
            )
            record["round"] = index
            records.append(record)
            print(
                f"round {index} {arm:>3}: {record['requests_per_s']:.0f} req/s, "
                f"{record['gateway_cpu_ms_per_request']:.3f} ms CPU/req",
                flush=True,
            )
    return records


def _summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for arm in ("off", "on"):
        mine = [record for record in records if record["arm"] == arm]
        summary[arm] = {name: statistics.median(r[name] for r in mine) for name in FIGURES}
        summary[arm]["errors"] = sum(r.get("errors", 0) for r in mine)
    summary["change_percent"] = {
        name: 100 * (summary["on"][name] - summary["off"][name]) / summary["off"][name]
        for name in FIGURES
        if summary["off"][name]
    }
    summary["paired_change_percent"] = _paired_changes(records)
    return summary


def _paired_changes(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per round, on versus off (the two arms ran back to back): the median, lowest and
    highest change in percent. Drift of a shared machine that is slower than a round cancels
    in each pair, where it shifts the medians of the arms taken apart."""
    rounds: dict[int, dict[str, dict[str, Any]]] = {}
    for record in records:
        rounds.setdefault(record["round"], {})[record["arm"]] = record
    changes: dict[str, float] = {}
    for name in ("requests_per_s", "gateway_cpu_ms_per_request"):
        ratios = sorted(
            100 * (pair["on"][name] - pair["off"][name]) / pair["off"][name]
            for pair in rounds.values()
            if pair["off"][name]
        )
        changes[name] = statistics.median(ratios)
        changes[f"{name}_low"], changes[f"{name}_high"] = ratios[0], ratios[-1]
    return changes


def _markdown(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    lines = [
        f"Limits off vs on, c={args.concurrency}, {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s per arm (medians), Redis "
        + ("pinned to the load core" if args.pin_redis else "not pinned"),
        "",
        "| Arm | req/s | p50 ms | p99 ms | Gateway CPU/req ms | Redis CPU/req µs | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm in ("off", "on"):
        s = summary[arm]
        lines.append(
            f"| {arm} | {s['requests_per_s']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
            f"{s['gateway_cpu_ms_per_request']:.3f} | {s['redis_cpu_us_per_request']:.0f} | "
            f"{s['errors']:.0f} |"
        )
    change = summary["change_percent"]
    lines.append(
        f"| on vs off | {change['requests_per_s']:+.1f} % | {change['p50_ms']:+.1f} % | "
        f"{change['p99_ms']:+.1f} % | {change['gateway_cpu_ms_per_request']:+.1f} % | "
        f"{change['redis_cpu_us_per_request']:+.1f} % | |"
    )
    paired = summary["paired_change_percent"]
    lines += [
        "",
        "Paired by round (on versus off, back to back), median and range over the rounds: "
        f"req/s {paired['requests_per_s']:+.1f} % ({paired['requests_per_s_low']:+.1f} to "
        f"{paired['requests_per_s_high']:+.1f} %), gateway CPU/request "
        f"{paired['gateway_cpu_ms_per_request']:+.1f} % "
        f"({paired['gateway_cpu_ms_per_request_low']:+.1f} to "
        f"{paired['gateway_cpu_ms_per_request_high']:+.1f} %).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
