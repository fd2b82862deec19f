"""The demo's child processes: one-off setup steps and the long-running services.

Every child runs in its own session (so a Ctrl-C in the terminal reaches only the demo, which
then stops its children in order) and, on Linux, is sent SIGTERM by the kernel should the demo
itself die without cleaning up. Services log to one file each under the demo's log directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_TIMEOUT_S = 15.0
STRAGGLER_TIMEOUT_S = 3.0
POLL_S = 0.2
LOG_TAIL_LINES = 20


class StepFailed(RuntimeError):
    """A setup step exited non-zero; the message carries the end of its output."""


class Interrupted(RuntimeError):
    """The demo was asked to stop while a step was running."""


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec function asking the kernel to SIGTERM the child when the demo dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now, not after fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the demo died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``, indented for a report."""
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


@dataclass
class Service:
    """A long-running child process and the file it logs to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        """The end of the service's log, for a failure report."""
        try:
            return tail(self.log_path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return "    (no log)"


@dataclass
class Supervisor:
    """Starts services and setup steps with one environment, and stops them all."""

    env: Mapping[str, str]
    cwd: Path
    log_dir: Path
    stop_requested: threading.Event
    services: list[Service] = field(default_factory=list)

    def _popen(
        self, argv: Sequence[str], env: Mapping[str, str], **options: object
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - argv is built by the demo, never from input
            list(argv),
            cwd=self.cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_parent_death_hook(),  # noqa: PLW1509 - calls prctl only
            **options,  # type: ignore[arg-type]
        )

    def start(self, name: str, argv: Sequence[str]) -> Service:
        """Start a service whose output goes to ``<log_dir>/<name>.log`` (appended)."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n===== {stamp} started: {' '.join(argv)}\n".encode())
            log.flush()
            process = self._popen(argv, self.env, stdout=log, stderr=subprocess.STDOUT)
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def run_step(self, argv: Sequence[str], extra_env: Mapping[str, str] | None = None) -> str:
        """Run a setup step to completion and return its stdout.

        Raises StepFailed (with the end of its output) if it exits non-zero, and Interrupted
        (after terminating it) if the demo is asked to stop meanwhile.
        """
        env = {**self.env, **(extra_env or {})}
        process = self._popen(argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while True:
            try:
                out, err = process.communicate(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                if self.stop_requested.is_set():
                    _terminate(process)
                    raise Interrupted(" ".join(argv[1:])) from None
        stdout = out.decode(errors="replace")
        if process.returncode != 0:
            output = tail(stdout + "\n" + err.decode(errors="replace"))
            raise StepFailed(f"`{' '.join(argv[1:])}` exited with {process.returncode}:\n{output}")
        return stdout

    def first_dead(self) -> Service | None:
        """A service that has exited, if any."""
        return next((service for service in self.services if not service.alive()), None)

    def stop_all(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every service at once, wait up to ``timeout`` s for all, then SIGKILL the
        rest; finally clear out anything left in their process groups (a Celery beat child)."""
        for service in self.services:
            if service.alive():
                with contextlib.suppress(ProcessLookupError):
                    service.process.terminate()
        deadline = time.monotonic() + timeout
        for service in self.services:
            _wait_or_kill(service.process, deadline)
        for service in self.services:
            _clear_group(service.process.pid)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop a setup step: SIGTERM, a short grace period, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    _wait_or_kill(process, time.monotonic() + STRAGGLER_TIMEOUT_S)
    process.communicate()
    _clear_group(process.pid)


def _wait_or_kill(process: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait for ``process`` until ``deadline`` (monotonic), then SIGKILL its process group."""
    try:
        process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to process group ``group``; False when the group has no process left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a zombie leader on some systems; its members are gone
        return False
    return True


def _clear_group(group: int) -> None:
    """SIGTERM whatever still lives in ``group``, wait briefly, then SIGKILL it."""
    if not _signal_group(group, signal.SIGTERM):
        return
    deadline = time.monotonic() + STRAGGLER_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _signal_group(group, 0):  # signal 0: is anyone left?
            return
        time.sleep(0.05)
    _signal_group(group, signal.SIGKILL)
