"""Shared bits of the benchmark: paths, the bench environment, /proc readers, statistics."""

from __future__ import annotations

import hashlib
import math
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

BENCH_DATABASE_NAME = "tollgate_bench"
BENCH_ENV: dict[str, str] = {
    "DEBUG": "0",
    "SECRET_KEY": "bench",
    "API_KEY_HMAC_SECRET": "bench",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE_NAME}",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}


def bench_env() -> dict[str, str]:
    """This process's environment with the bench settings on top."""
    return {**os.environ, **BENCH_ENV}


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (children inherit it); return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return utime / CLOCK_TICKS, stime / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    return sum(cpu_times(pid))


def machine_cpu_seconds() -> dict[str, float]:
    """CPU seconds since boot over all cores, from /proc/stat: `busy` (neither idle nor
    iowait), of which `interrupts` (irq + softirq: loopback packets) and `steal`."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name == "cpu":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values[:8])
            return {
                "busy": (user + nice + system + irq + softirq + steal) / CLOCK_TICKS,
                "interrupts": (irq + softirq) / CLOCK_TICKS,
                "steal": steal / CLOCK_TICKS,
            }
    return {"busy": 0.0, "interrupts": 0.0, "steal": 0.0}


def pid_of(command: str) -> int | None:
    """The pid of the first process whose name (comm) is `command`, if any."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    return int(entry.name)
            except OSError:
                continue
    return None


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def children_of(pid: int) -> list[int]:
    """Direct child processes of `pid`."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def code_state(root: Path = ROOT) -> dict[str, object]:
    """Which gateway code was measured: the commit, changed files, a digest of apps/ and config/."""
    digest = hashlib.sha256()
    files = sorted(
        [*root.glob("apps/**/*.py"), *root.glob("apps/**/*.lua"), *root.glob("config/*.py")]
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return {
        "source": str(root),
        "commit": _git(root, "rev-parse", "HEAD"),
        "uncommitted_files_in_apps_config": len(
            _git(root, "status", "--porcelain", "apps", "config").splitlines()
        ),
        "apps_config_sha256": digest.hexdigest()[:16],
    }


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def machine_description() -> dict[str, object]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
    }


@dataclass(frozen=True, slots=True)
class Distribution:
    """Percentiles of a sample, in the sample's unit."""

    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        if not values:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        ordered = sorted(values)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            p99=percentile(ordered, 99),
            mean=sum(ordered) / len(ordered),
            max=ordered[-1],
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
