"""What the load generator records per request, and SSE event counting."""

from __future__ import annotations

import time
from dataclasses import dataclass

DONE = b"data: [DONE]"
ERROR_EVENT = b'data: {"error"'


@dataclass(slots=True)
class Outcome:
    """One request: when it started, how long it took, and for streams TTFT and events.

    `chunks` counts the SSE events before `data: [DONE]` (which is not counted).
    """

    started: float
    latency: float = 0.0
    ok: bool = False
    error: str | None = None
    ttft: float | None = None
    first_at: float | None = None
    ended_at: float = 0.0
    chunks: int = 0
    done: bool = False
    error_event: bool = False

    def fail(self, error: str) -> Outcome:
        self.error = error
        self.ended_at = time.perf_counter()
        self.latency = self.ended_at - self.started
        return self

    def succeed(self, *, stream: bool) -> Outcome:
        """Mark a complete answer: a plain body, or a stream that ended with [DONE]."""
        if stream and self.error_event:
            return self.fail("error event")
        if stream and not self.done:
            return self.fail("no [DONE]")
        self.ended_at = time.perf_counter()
        self.latency = self.ended_at - self.started
        self.ok = True
        return self


class EventCounter:
    """Counts `\\n\\n`-terminated events across body pieces; notes TTFT, [DONE], errors."""

    __slots__ = ("_events", "_outcome", "_tail")

    def __init__(self, outcome: Outcome) -> None:
        self._outcome = outcome
        self._tail = b""
        self._events = 0

    def feed(self, data: bytes) -> None:
        outcome = self._outcome
        if outcome.first_at is None:
            outcome.first_at = time.perf_counter()
            outcome.ttft = outcome.first_at - outcome.started
        joined = self._tail + data
        self._events += joined.count(b"\n\n") - self._tail.count(b"\n\n")
        if not outcome.done and DONE in joined:
            outcome.done = True
        if ERROR_EVENT in joined:
            outcome.error_event = True
        self._tail = joined[-16:]
        outcome.chunks = self._events - 1 if outcome.done else self._events
