"""Non-streaming closed-loop load with wrk (C, one thread) and bench/wrk_post.lua.

    BENCH_BODY='{"model":"demo-small","messages":[{"role":"user","content":"Hi"}]}' \
      taskset -c 1 wrk -t1 -c32 -d8s -s bench/wrk_post.lua \
      http://127.0.0.1:9190/v1/chat/completions

wrk generates several times the load the Python generator can on one core (measured in
docs/performance.md), so it is used for the non-streaming phases when it is installed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from typing import Any

from bench.common import ROOT
from bench.loadgen import Target
from bench.processes import pinned

LUA_SCRIPT = ROOT / "bench" / "wrk_post.lua"
MARKER = "BENCH_JSON "


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    target: Target, *, demo: dict, concurrency: int, seconds: float, core: int
) -> dict[str, Any]:
    """Run wrk on `core` and return the summary loadgen.summarise_requests would give."""
    env = {**os.environ, "BENCH_BODY": target.body(stream=False, demo=demo).decode()}
    auth = target.headers().get("Authorization")
    if auth:
        env["BENCH_AUTH"] = auth
    command = pinned(
        core,
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
         "-s", str(LUA_SCRIPT), target.url],
    )  # fmt: skip
    cpu_before = children_cpu_seconds()
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    summary = _parse(completed.stdout)
    summary["generator_cpu_s"] = children_cpu_seconds() - cpu_before
    return summary


def _parse(output: str) -> dict[str, Any]:
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{output}")
    raw = json.loads(line[len(MARKER) :])
    errors = raw["errors"]
    failed = errors["status"] + errors["read"] + errors["write"] + errors["timeout"]
    wall_s = raw["duration_us"] / 1e6
    ok = raw["requests"] - errors["status"]
    latency = {name: value / 1000 for name, value in raw["latency_us"].items()}
    return {
        "requests": ok,
        "errors": failed + errors["connect"],
        "error_kinds": {name: count for name, count in errors.items() if count},
        "wall_s": wall_s,
        "rps": ok / wall_s if wall_s else 0.0,
        "latency_ms": {"count": raw["requests"], **latency},
    }
