"""A lean HTTP/1.1 client for the load generator: asyncio protocols and httptools' parser.

aiohttp's client costs about 1.3 ms of CPU per 20-token stream; sharing core 1 with the
demo upstream, that made the generator the bottleneck at 256 streams. This client sends
prebuilt request bytes on keep-alive connections and parses answers in C (httptools, which
uvicorn[standard] installs), several times cheaper per request and per event.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast
from urllib.parse import urlsplit

import httptools

from bench.events import EventCounter, Outcome

CONNECT_TIMEOUT_S = 15.0
ANSWER_TIMEOUT_S = 120.0


def request_bytes(url: str, headers: dict[str, str], body: bytes) -> bytes:
    """The whole POST request for `url`, headers and body."""
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._outcome: Outcome | None = None
        self._counter: EventCounter | None = None
        self._status = 0
        self._keep_alive = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._finish(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(ConnectionResetError("connection closed before the answer ended"))

    # httptools callbacks

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._counter is not None:
            self._counter.feed(body)

    def on_message_complete(self) -> None:
        assert self._parser is not None
        self._keep_alive = self._parser.should_keep_alive()
        self._finish(None)

    # requests

    async def send(self, payload: bytes, outcome: Outcome) -> int:
        """Send `payload`, wait for the whole answer; return its status (events in outcome)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._waiter = loop.create_future()
        self._outcome, self._counter = outcome, EventCounter(outcome)
        self._status, self._keep_alive = 0, False
        self.transport.write(payload)
        timer = loop.call_later(ANSWER_TIMEOUT_S, self._finish, TimeoutError("answer timed out"))
        try:
            await self._waiter
        finally:
            timer.cancel()
            self._parser = None
        return self._status

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self.closed

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _finish(self, error: Exception | None) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


class Client:
    """Keep-alive connections to one host, reused by whichever request comes next."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._idle: list[Connection] = []
        self._all: set[Connection] = set()

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        connecting = loop.create_connection(Connection, self._host, self._port)
        _, connection = await asyncio.wait_for(connecting, CONNECT_TIMEOUT_S)
        self._all.add(connection)
        return connection

    async def _acquire(self) -> Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return await self._connect()

    def _release(self, connection: Connection, *, keep: bool) -> None:
        if keep and connection.reusable:
            self._idle.append(connection)
        else:
            connection.close()
            self._all.discard(connection)

    async def call(self, payload: bytes, *, stream: bool, keep_alive: bool = True) -> Outcome:
        """One request; the outcome holds its latency, TTFT and events (for streams)."""
        outcome = Outcome(started=time.perf_counter())
        connection: Connection | None = None
        try:
            connection = await self._acquire()
            status = await connection.send(payload, outcome)
        except (OSError, TimeoutError, httptools.HttpParserError) as error:
            if connection is not None:
                self._release(connection, keep=False)
            return outcome.fail(type(error).__name__)
        self._release(connection, keep=keep_alive)
        if status != 200:
            return outcome.fail(f"http {status}")
        return outcome.succeed(stream=stream)

    def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
