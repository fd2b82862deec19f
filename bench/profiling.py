"""Sample the gateway worker with py-spy and rank where its CPU goes.

    uv pip install --target /tmp/pyspy py-spy     # outside the project's environment
    uv run python -m bench.run_gateway_bench --profile --py-spy /tmp/pyspy/bin/py-spy

py-spy runs with --gil (only the thread holding the GIL is sampled: its idle detection does
not work in this container, so idle pool threads would otherwise dominate) and --threads.
It writes collapsed stacks ("thread;frame;...;leaf count" lines); `summarise` ranks functions
and modules of the event-loop thread by self samples (the leaf frame) and inclusive samples.
Self samples of `Runner.run` are time inside uvloop's C code (callbacks, socket calls).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.processes import pinned

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
PATH_MARKERS = ("site-packages/", "/lib/python3.11/", "/work/main/")


def start_py_spy(
    py_spy: str, pid: int, seconds: float, output: Path, core: int, *, native: bool
) -> subprocess.Popen[bytes]:
    """Start `py-spy record` on `pid` (raw collapsed stacks to `output`), pinned to `core`."""
    command = [
        py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
        "--rate", "250", "--format", "raw", "--output", str(output), "--gil", "--threads",
    ]  # fmt: skip
    if native:
        command.append("--native")
    return subprocess.Popen(
        pinned(core, command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def short_frame(frame: str) -> tuple[str, str]:
    """(function, short file) of one py-spy frame such as `read (aiohttp/streams.py:123)`."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    path = match.group("file")
    for marker in PATH_MARKERS:
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return match.group("func"), path


def _stacks(path: Path) -> list[tuple[str, list[str], int]]:
    """(thread name, frames, samples) of every collapsed stack."""
    stacks: list[tuple[str, list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames.pop(0).split(": ", 1)[-1] if frames[0].startswith("thread (") else "?"
        if frames:
            stacks.append((thread, frames, int(count)))
    return stacks


def summarise(path: Path, top: int = 25, thread: str = "MainThread") -> dict[str, Any]:
    """Top functions of `thread` by self and inclusive samples, and modules by self samples."""
    self_fn: Counter[str] = Counter()
    self_module: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_package: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for name, frames, count in _stacks(path):
        threads[name] += count
        if name != thread:
            continue
        total += count
        func, file = short_frame(frames[-1])
        self_fn[f"{func} ({file})"] += count
        self_module[file or func] += count
        self_package[_package(file or func)] += count
        for function in {"{} ({})".format(*short_frame(frame)) for frame in frames}:
            inclusive[function] += count

    def ranked(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "pct": 100 * n / total if total else 0.0}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "samples_by_thread": dict(threads),
        "self": ranked(self_fn),
        "self_by_module": ranked(self_module),
        "self_by_package": ranked(self_package),
        "inclusive": ranked(inclusive),
        "inclusive_apps": ranked(Counter({k: v for k, v in inclusive.items() if "(apps/" in k})),
    }


def _package(file: str) -> str:
    """`redis`, `aiohttp`, `apps/gateway`, `asyncio`... of a short frame file."""
    parts = file.split("/")
    if parts[0] == "apps" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else file
