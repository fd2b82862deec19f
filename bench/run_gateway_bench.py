"""Benchmark the /v1 gateway against the demo upstream called directly, in one run.

    apt-get install -y wrk                                # once (else: asyncio generator)
    uv run python -m bench.run_gateway_bench              # full run, about 4 minutes
    uv run python -m bench.run_gateway_bench --quick      # about 1 minute
    uv pip install --target /tmp/pyspy py-spy             # once, outside the project
    uv run python -m bench.run_gateway_bench --profile --py-spy /tmp/pyspy/bin/py-spy \
        --wait-quiet 300 --retry-noisy 2                  # shared machine: start when idle

Starts the demo upstream (`manage.py run_demo_upstream`, core 1) and the gateway (gunicorn
-w 1 with uvicorn_worker.UvicornWorker, core 0) on free loopback ports, prepares the
`tollgate_bench` database and Redis db 14 (bench/setup_bench.py), and runs:

1. short non-streaming requests at concurrency 1, 32, 128 (wrk when installed, else the
   asyncio generator), direct and through the gateway: req/s, p50/p99, gateway CPU/request;
2. streams of 20 tokens 20 ms apart at 32 and 256 concurrent streams: TTFT, errors, gateway
   CPU per relayed chunk;
3. slow streams opened at a fixed rate (1000, 2000, 4000): how many one worker holds open
   at once without error, and its RSS;
4. with --profile: py-spy on the worker during a c=32 request phase and a 32-stream phase.

This process, the load generators and (unless --no-pin-redis) the local redis-server run on
core 1, so the gateway worker has core 0 to itself. Prints a Markdown report and writes it
with the JSON of every figure to bench/results/ (gitignored). Servers are stopped on exit,
on error and on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from bench import phases, report
from bench.common import (
    PYTHON,
    RESULTS_DIR,
    ROOT,
    bench_env,
    code_state,
    free_port,
    machine_description,
    pid_of,
    raise_open_files_limit,
)
from bench.loadgen import CLIENTS, Target, run
from bench.phases import Bench, Settings
from bench.processes import pin_for_the_run, start_demo_upstream, start_gateway, worker_pid
from bench.wrkgen import wrk_available

GATEWAY_CORE = 0
LOAD_CORE = 1
DIRECT_MODEL = "demo-small"


def settings_from(args: argparse.Namespace) -> Settings:
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if wrk_available() else "python"
    py_spy = None
    if args.profile:
        py_spy = args.py_spy or shutil.which("py-spy")
        if py_spy is None:
            raise SystemExit("--profile needs py-spy: pass --py-spy PATH (see the docstring)")
    quick = args.quick
    return Settings(
        limits=args.limits,
        warmup_s=0.5 if quick else 1.0,
        request_s=2.0 if quick else 8.0,
        concurrencies=(1, 32, 128),
        stream_s=2.0 if quick else 10.0,
        stream_concurrencies=(32, 256),
        hold_levels=tuple(args.hold_levels or ((500, 1000) if quick else (1000, 2000, 4000))),
        hold_ramp_per_s=args.hold_ramp_per_s,
        hold_s=2.0 if quick else 6.0,
        hold_inter_token_ms=args.hold_inter_token_ms,
        generator=generator,
        client=args.client,
        retry_noisy=args.retry_noisy,
        load_core=LOAD_CORE,
        settle_s=0.5 if quick else 1.5,
        profile_s=4.0 if quick else 8.0,
        py_spy=py_spy,
        native_profile=args.native,
        stream_start=args.stream_start,
    )


def prepare_database(upstream_url: str, *, limits: bool) -> dict[str, str]:
    """Run bench.setup_bench in a child process (Django stays out of this one)."""
    completed = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.setup_bench",
            "--upstream-base-url",
            upstream_url + "/v1",
            *(["--limits"] if limits else []),
        ],
        cwd=ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def gateway_env() -> dict[str, str]:
    """Gateway settings at their defaults: drop any GATEWAY_* inherited from this shell."""
    for name in [name for name in os.environ if name.startswith("GATEWAY_")]:
        os.environ.pop(name)
    return {"LOG_LEVEL": "WARNING"}


async def run_phases(bench: Bench) -> dict[str, Any]:
    settings = bench.settings
    records: list[dict[str, Any]] = []
    measured = phases.measured
    for concurrency in settings.concurrencies:
        for target in bench.targets():
            phase = partial(phases.requests_phase, bench, target, concurrency)
            records.append(await measured(bench, phase))
    for concurrency in settings.stream_concurrencies:
        for target in bench.targets():
            phase = partial(phases.streams_phase, bench, target, concurrency)
            records.append(await measured(bench, phase))
    for level in settings.hold_levels:  # not rerun: a rerun would start from the peak RSS
        records.append(await phases.logged(bench, phases.hold_phase(bench, bench.gateway, level)))
    top = max(settings.hold_levels)
    records.append(await phases.logged(bench, phases.hold_phase(bench, bench.direct, top)))
    profiles = []
    if settings.py_spy:
        profiles.append(await phases.profile_phase(bench, stream=False, concurrency=32))
        profiles.append(await phases.profile_phase(bench, stream=True, concurrency=32))
    return {"records": records, "profiles": profiles}


def benchmark(settings: Settings, stamp: str, source: Path, *, pin_redis: bool) -> dict[str, Any]:
    """Start the servers, run every phase, stop the servers whatever happens."""
    log_dir = RESULTS_DIR / f"logs-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if pin_redis:
            pin_for_the_run(stack, pid_of("redis-server"), LOAD_CORE)
        upstream = start_demo_upstream(free_port(), LOAD_CORE, log_dir)
        stack.callback(upstream.stop)
        setup = prepare_database(upstream.url, limits=settings.limits)
        gateway = start_gateway(free_port(), GATEWAY_CORE, log_dir, gateway_env(), source)
        stack.callback(gateway.stop)
        worker = worker_pid(gateway)
        bench = Bench(
            settings=settings,
            direct=Target("direct", upstream.url + "/v1/chat/completions", DIRECT_MODEL),
            gateway=Target(
                "gateway", gateway.url + "/v1/chat/completions", setup["model"], setup["api_key"]
            ),
            worker_pid=worker,
            upstream_pid=upstream.pid,
            redis_pid=pid_of("redis-server"),
            gateway_log=gateway.log_path,
            results_dir=RESULTS_DIR,
            stamp=stamp,
        )
        results = run(run_phases(bench))
        results["affinity"] = {
            "gateway_worker": sorted(os.sched_getaffinity(worker)),
            "demo_upstream": sorted(os.sched_getaffinity(upstream.pid)),
            "load_generator": sorted(os.sched_getaffinity(0)),
        }
    return results


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about one minute instead of four")
    parser.add_argument(
        "--limits", action="store_true", help="rate limits on (a plan and key limits never reached)"
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator of the non-streaming phases (auto: wrk when installed)",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="raw",
        help="HTTP client of the Python generator (raw: asyncio + httptools, the cheapest)",
    )
    parser.add_argument("--hold-levels", type=int, nargs="+", help="open-stream levels to try")
    parser.add_argument("--hold-ramp-per-s", type=float, default=200.0, help="stream opening rate")
    parser.add_argument("--hold-inter-token-ms", type=float, default=2000.0)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle (shared machines)",
    )
    parser.add_argument(
        "--retry-noisy",
        type=int,
        default=0,
        metavar="N",
        help="rerun a phase up to N times while other processes load the machine",
    )
    parser.add_argument(
        "--gateway-source",
        default=str(ROOT),
        metavar="DIR",
        help="serve the gateway from this source tree, e.g. an older commit unpacked with "
        "`git archive` (the database is still prepared by this tree)",
    )
    parser.add_argument("--profile", action="store_true", help="also sample the worker with py-spy")
    parser.add_argument("--py-spy", default=None, help="py-spy binary (default: on PATH)")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    parser.add_argument(
        "--pin-redis",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="move the local redis-server to the load core for the run (as if Redis ran on "
        "a machine of its own); unpinned, the scheduler also puts it on the gateway's core",
    )
    parser.add_argument(
        "--stream-start",
        choices=("staggered", "lockstep"),
        default="staggered",
        help="stream phases: start the streams spread over one stream's length (default), "
        "or all at once, so that equal streams keep arriving together",
    )
    args = parser.parse_args()
    settings = settings_from(args)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    os.sched_setaffinity(0, {LOAD_CORE})
    nofile = raise_open_files_limit()
    idle_before = None
    if args.wait_quiet:
        idle_before = run(phases.wait_for_quiet(args.wait_quiet, busy_cores=0.25, window_s=2.0))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()
    source = Path(args.gateway_source).resolve()
    results = benchmark(settings, stamp, source, pin_redis=args.pin_redis)
    results.update(
        stamp=stamp,
        machine=machine_description(),
        code=code_state(source),
        settings=settings.__dict__,
        nofile_limit=nofile,
        busy_cores_before=idle_before,
        duration_s=time.monotonic() - started,
        pinning=(
            f"gateway worker (gunicorn -w 1) on core {GATEWAY_CORE}; demo upstream, load "
            f"generator{' (wrk and asyncio)' if settings.generator == 'wrk' else ''} and py-spy "
            f"on core {LOAD_CORE}; "
            + (
                f"Redis moved to core {LOAD_CORE} for the run"
                if args.pin_redis
                else "Redis not pinned"
            )
            + "; PostgreSQL not pinned."
        ),
        limits=(
            "on: a plan and key limits (requests, tokens, in flight) checked on every request"
            if settings.limits
            else "off: no plan, no key limits (admission still checks credit and revocation)"
        ),
    )
    results["derived"] = report.derive(results["records"])
    markdown = report.render(results)
    _write(Path(RESULTS_DIR / f"gateway-bench-{stamp}"), results, markdown)
    print(markdown)


def _write(base: Path, results: dict[str, Any], markdown: str) -> None:
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    base.with_suffix(".md").write_text(markdown)


if __name__ == "__main__":
    main()
