"""Waiting in tests on a condition with a deadline, instead of sleeping a guessed time."""

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")
POLL_EVERY_S = 0.02


def poll(produce: Callable[[], T], done: Callable[[T], bool], timeout_s: float, what: str) -> T:
    """Call `produce` until `done` holds for what it gave (returned); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not done(value := produce()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what} (last: {value!r})")
        time.sleep(POLL_EVERY_S)
    return value
