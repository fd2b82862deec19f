"""Start and stop real server processes for tests: gunicorn with uvicorn workers."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset or timed out while workers boot
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not become healthy in {timeout}s")


@contextmanager
def gunicorn_server(env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """`gunicorn config.asgi:application` with uvicorn workers on a free loopback port."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "config.asgi:application",
        "-k", "uvicorn_worker.UvicornWorker",
        "-w", str(workers),
        "-b", f"127.0.0.1:{port}",
        "--graceful-timeout", "5",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
