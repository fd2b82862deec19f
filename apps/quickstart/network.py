"""Loopback ports and HTTP readiness checks for the demo."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

HOST = "127.0.0.1"
PROBE_TIMEOUT_S = 2.0
RETRY_EVERY_S = 0.2


class NotReady(RuntimeError):
    """A URL did not answer 200 in time."""


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``host:port`` now (as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def answers_200(url: str) -> bool:
    """Whether GET ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_for_200(
    url: str, *, timeout: float, stop: threading.Event, check: Callable[[], None]
) -> None:
    """Poll ``url`` until it answers 200.

    ``check`` runs before every attempt and may raise (a child died). Raises NotReady after
    ``timeout`` seconds, returns early (without raising) once ``stop`` is set.
    """
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        check()
        if answers_200(url):
            return
        if time.monotonic() >= deadline:
            raise NotReady(f"{url} did not answer 200 in time; see the logs")
        stop.wait(RETRY_EVERY_S)
