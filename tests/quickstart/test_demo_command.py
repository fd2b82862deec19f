"""`manage.py demo` end to end: a real start with neither PostgreSQL nor Redis reachable.

The demo is started as a user would, from a shell whose database and Redis settings point at
closed ports, with its data in a temporary directory. The API is called with the official
openai SDK and with the exact curl command and Python snippet the demo prints; then the demo
gets SIGTERM and none of the processes it started may survive it.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "Tollgate demo is ready"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
QUESTION = [{"role": "user", "content": "Hello, demo!"}]
SETTING_PREFIXES = ("DATABASE_", "REDIS_", "CELERY_", "GATEWAY_", "API_KEY_", "DJANGO_")


@pytest.fixture(autouse=True)
def clean_redis() -> None:
    """Replaces tests/conftest.py's fixture of the same name: these tests use no Redis."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shell_environment() -> dict[str, str]:
    """A developer shell with stale settings: PostgreSQL and Redis URLs on closed ports.

    DEBUG=1 is what `make demo` must set for settings to load without a SECRET_KEY.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(SETTING_PREFIXES) and name != "SECRET_KEY"
    }
    closed = free_port()  # nothing listens there
    env.update(
        DEBUG="1",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/tollgate",
        REDIS_URL=f"redis://127.0.0.1:{closed}/15",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{closed}/0",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class RunningDemo:
    """A `manage.py demo` process and the lines it printed so far."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def start_reading(self) -> None:
        def pump() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, wanted: str, timeout: float) -> None:
        """Collect output until the line ``wanted``; fail on exit or after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {wanted!r} within {timeout} s:\n" + "\n".join(self.lines))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(STOP_TIMEOUT_S)
                pytest.fail(
                    f"demo exited ({self.process.returncode}) before {wanted!r}:\n"
                    + "\n".join(self.lines)
                )
            self.lines.append(line)
            if line == wanted:
                return

    def value_of(self, label: str) -> str:
        """The value printed after ``label:`` in the banner."""
        pattern = re.compile(rf"^\s*{re.escape(label)}:\s+(\S+)")
        for line in self.lines:
            found = pattern.match(line)
            if found:
                return found.group(1)
        raise AssertionError(f"no {label!r} line in:\n" + "\n".join(self.lines))

    def block(self, first: str, last: str) -> str:
        """The printed lines from the one starting with ``first`` to the next starting with
        ``last``, inclusive."""
        start = next(i for i, line in enumerate(self.lines) if line.startswith(first))
        end = next(i for i in range(start, len(self.lines)) if self.lines[i].startswith(last))
        return "\n".join(self.lines[start : end + 1])


@pytest.fixture
def demo_ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def start_demo(tmp_path: Path, demo_ports: tuple[int, int]) -> Iterator:
    """Start `manage.py demo` (each call a new run on the same data dir and ports)."""
    started: list[subprocess.Popen[str]] = []

    def start() -> RunningDemo:
        port, upstream_port = demo_ports
        command = [
            sys.executable, "manage.py", "demo",
            "--port", str(port), "--upstream-port", str(upstream_port),
            "--data-dir", str(tmp_path / "demo"),
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=shell_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        demo = RunningDemo(process)
        demo.start_reading()
        return demo

    yield start
    for process in started:  # a failed test must not leave a demo running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (pid -> command line), from `ps -ww`: unlimited width, so a long
    checkout path never cuts a command short."""
    table = subprocess.run(
        ["ps", "-ww", "-A", "-o", "pid=,ppid=,command="], capture_output=True, text=True, check=True
    ).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for row in table.splitlines():
        child, parent, command = row.split(None, 2)
        children.setdefault(int(parent), []).append((int(child), command))
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        for child, command in children.get(pending.pop(), []):
            found[child] = command
            pending.append(child)
    return found


def still_running(pids: list[int]) -> list[int]:
    """The ``pids`` that exist and are not zombies."""
    if not pids:
        return []
    listing = subprocess.run(
        ["ps", "-o", "pid=,stat=", "-p", ",".join(map(str, pids))],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [
        int(pid) for pid, stat in (row.split() for row in listing.splitlines()) if "Z" not in stat
    ]


def demo_processes(demo: RunningDemo) -> dict[int, str]:
    """The demo's processes once all are up, Celery's beat child included (it forks a moment
    after the worker starts, so it may not exist yet when the demo reports ready)."""
    deadline = time.monotonic() + 15
    while True:
        children = descendants(demo.process.pid)
        commands = list(children.values())
        celery = [command for command in commands if "celery" in command]
        if len(celery) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(celery) == 2, children  # the worker and its beat process
    assert sum("uvicorn" in command for command in commands) == 1, children
    assert sum("run_demo_upstream" in command for command in commands) == 1, children
    return children


def stop_and_check_nothing_survives(demo: RunningDemo) -> None:
    children = demo_processes(demo)
    demo.process.send_signal(signal.SIGTERM)
    demo.wait_for("Every demo process is stopped.", STOP_TIMEOUT_S)
    assert demo.process.wait(STOP_TIMEOUT_S) == 0
    deadline = time.monotonic() + 5  # orphans re-parented to init are reaped asynchronously
    while still_running(list(children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = still_running(list(children))
    assert not survivors, {pid: children[pid] for pid in survivors}


def ask_with_sdk(base_url: str, api_key: str) -> None:
    """One plain and one streamed completion through the official openai SDK."""
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    with client:
        reply = client.chat.completions.create(model="default", messages=QUESTION)
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert reply.usage.completion_tokens > 0
        stream = client.chat.completions.create(model="demo-large", messages=QUESTION, stream=True)
        with stream:
            chunks = list(stream)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        assert text
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert {model.id for model in client.models.list()} == {"default", "demo-large"}


def post_chat(base_url: str, api_key: str) -> tuple[int, dict]:
    """What the printed curl command does, with urllib: the status and the JSON body."""
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps({"model": "default", "messages": QUESTION}).encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def run_printed_curl(demo: RunningDemo) -> None:
    """The curl command exactly as printed, through a shell (or urllib without curl)."""
    command = demo.block("curl ", "  -d ")
    if shutil.which("curl") is None or shutil.which("sh") is None:
        status, body = post_chat(demo.value_of("Base URL"), demo.value_of("API key"))
        assert status == 200
    else:
        result = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, timeout=60, check=True
        )
        body = json.loads(result.stdout)
    assert body["object"] == "chat.completion", body
    assert body["choices"][0]["message"]["content"]


def run_printed_python(demo: RunningDemo) -> None:
    """The Python snippet exactly as printed, in a fresh interpreter."""
    snippet = demo.block("from openai import OpenAI", "print(")
    result = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def admin_login(root_url: str, email: str, password: str) -> str:
    """Log in to the Django admin; the path the login form redirects to."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    login_url = f"{root_url}/admin/login/?next=/admin/"
    with opener.open(login_url, timeout=10) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page[:500]
    form = {"csrfmiddlewaretoken": token.group(1), "username": email, "password": password}
    request = urllib.request.Request(
        login_url, data=urllib.parse.urlencode(form).encode(), headers={"Referer": login_url}
    )
    with opener.open(request, timeout=10) as response:
        return urllib.parse.urlparse(response.url).path


def test_demo_serves_the_api_and_stops_everything(start_demo) -> None:
    demo = start_demo()
    demo.wait_for(READY_LINE, START_TIMEOUT_S)
    base_url, api_key = demo.value_of("Base URL"), demo.value_of("API key")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)

    ask_with_sdk(base_url, api_key)
    run_printed_curl(demo)
    status, _ = post_chat(base_url, api_key)
    assert status == 200
    run_printed_python(demo)
    login = next(line for line in demo.lines if "Admin login:" in line)
    email, password = login.split(":", 1)[1].split(" / ")
    assert admin_login(base_url.removesuffix("/v1"), email.strip(), password.strip()) == "/admin/"

    stop_and_check_nothing_survives(demo)


def test_demo_restarts_with_the_same_secrets(start_demo) -> None:
    first = start_demo()
    first.wait_for(READY_LINE, START_TIMEOUT_S)
    old_key = first.value_of("API key")
    old_login = next(line for line in first.lines if "Admin login:" in line)
    stop_and_check_nothing_survives(first)

    second = start_demo()
    second.wait_for(READY_LINE, START_TIMEOUT_S)
    base_url, new_key = second.value_of("Base URL"), second.value_of("API key")
    assert new_key != old_key
    assert next(line for line in second.lines if "Admin login:" in line) == old_login
    assert any("admin unchanged, Demo Org existing" in line for line in second.lines)
    for key in (old_key, new_key):  # keys from earlier starts keep working
        status, _ = post_chat(base_url, key)
        assert status == 200
    stop_and_check_nothing_survives(second)


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            sys.executable, "manage.py", "demo",
            "--port", str(port), "--upstream-port", str(free_port()),
            "--data-dir", str(tmp_path / "demo"),
        ]  # fmt: skip
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=shell_environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"Port {port} (--port) is already in use" in result.stderr
    assert not (tmp_path / "demo").exists()  # refused before starting anything
