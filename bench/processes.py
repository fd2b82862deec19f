"""Starting and stopping the servers under test, each pinned to a core with taskset."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import PYTHON, ROOT, bench_env, children_of

STOP_WAIT_S = 10.0


@dataclass
class Server:
    """A server process (its own session, so its whole group can be signalled) and its URL."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
        if self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def pin_for_the_run(stack: contextlib.ExitStack, pid: int | None, core: int) -> bool:
    """Move a running process (the local redis-server) to `core` until `stack` closes; False
    if there is no such process."""
    if not pid:
        return False
    stack.callback(os.sched_setaffinity, pid, os.sched_getaffinity(pid))
    os.sched_setaffinity(pid, {core})
    return True


def pinned(core: int, command: Sequence[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command]


def _spawn(
    name: str, command: list[str], url: str, log_dir: Path, env: dict[str, str], *, cwd: Path = ROOT
) -> Server:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, process, url, log_path)


def start_demo_upstream(port: int, core: int, log_dir: Path) -> Server:
    """`manage.py run_demo_upstream` (20 tokens, 20 ms apart by default) on `core`."""
    command = pinned(
        core,
        [PYTHON, "manage.py", "run_demo_upstream", "--port", str(port), "--latency-ms", "0",
         "--inter-token-ms", "20", "--completion-tokens", "20"],
    )  # fmt: skip
    server = _spawn("demo_upstream", command, f"http://127.0.0.1:{port}", log_dir, bench_env())
    wait_until_healthy(server)
    return server


def start_gateway(
    port: int, core: int, log_dir: Path, extra_env: dict[str, str], source: Path = ROOT
) -> Server:
    """gunicorn with one uvicorn worker on `core`, serving the code in `source`."""
    command = pinned(
        core,
        [PYTHON, "-m", "gunicorn", "config.asgi:application",
         "-k", "uvicorn_worker.UvicornWorker", "-w", "1", "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "5"],
    )  # fmt: skip
    env = {**bench_env(), **extra_env}
    server = _spawn("gateway", command, f"http://127.0.0.1:{port}", log_dir, env, cwd=source)
    wait_until_healthy(server)
    return server


def worker_pid(master: Server, timeout: float = 10.0) -> int:
    """The pid of the single gunicorn worker under `master`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = children_of(master.pid)
        if len(children) == 1:
            return children[0]
        time.sleep(0.1)
    raise RuntimeError(f"expected one gunicorn worker under pid {master.pid}")


def wait_until_healthy(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} at {server.url} was not healthy within {timeout}s")
