"""A lean HTTP/1.1 client for the calls to upstream providers.

Keep-alive connections are pooled per origin; responses are parsed by httptools (llhttp, the C
parser uvicorn uses) straight from the socket's data callbacks, and a body is handed to its
reader as the network delivers it. Per streamed chunk that is one parser call and one wake-up
of the reading task; aiohttp's client, used before, was 30 % of the worker's CPU in a stream
profile, in Python around the same kind of C parser (a stream reader, a waiter and a re-armed
read timer per packet; docs/performance.md has the measurements).

Timeouts cost nothing per packet: each busy connection has one timer that fires only when the
read timeout (no byte for `read_timeout_s`) or the total deadline may have passed. A response
whose reader falls behind pauses reading from the upstream (flow control) and is then never
timed out for idleness. A keep-alive connection the upstream closed while idle is noticed
before a request is written to it, or, if it closes as the request goes out, the request is
sent again once on a new connection (nothing was received, so nothing was relayed or charged).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import httptools

HIGH_WATER_BYTES = 1 << 20  # a reader this far behind pauses the upstream socket
IDLE_CONNECTIONS_PER_ORIGIN = 512


class HttpFailure(Exception):
    """The exchange failed: no connection, a timeout, a broken or malformed response."""


class _StaleConnection(HttpFailure):
    """A reused keep-alive connection closed before anything came back."""


@dataclass(frozen=True, slots=True)
class Origin:
    host: str
    port: int
    tls: bool

    @classmethod
    def of(cls, url: str) -> tuple[Origin, str]:
        """The origin of an http(s) URL and its path with query."""
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls), path

    @property
    def host_header(self) -> str:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def post_head(url: str, headers: dict[str, str]) -> tuple[Origin, bytes]:
    """The origin of `url`, and the head of a POST to it up to the `Content-Length` value."""
    origin, path = Origin.of(url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {origin.host_header}", "Accept-Encoding: identity"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return origin, ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class Response:
    """The response of one exchange. Read the body with `read()` or piece by piece with
    `next_piece()`; then `release()` it (the connection goes back to the pool if the body
    was read to its end) or `close()` it."""

    __slots__ = (
        "_connection", "_done", "_error", "_pieces", "_size", "_waiter", "headers_done", "status",
    )  # fmt: skip

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = 0
        self.headers_done = False
        self._pieces: list[bytes] = []
        self._size = 0
        self._done = False
        self._error: HttpFailure | None = None
        self._waiter: asyncio.Future[None] | None = None

    # The connection's side.

    def _feed(self, data: bytes) -> None:
        self._pieces.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER_BYTES:
            self._connection.pause()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        self._wake()

    def _fail(self, error: HttpFailure) -> None:
        if not self._done:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self._connection.loop.create_future()
        await self._waiter

    # The reader's side.

    @property
    def complete(self) -> bool:
        return self._done and not self._pieces

    async def wait_for_headers(self) -> None:
        while not self.headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def next_piece(self) -> bytes | None:
        """The body bytes received since the last call (waiting for some), or None at the end."""
        while not self._pieces:
            if self._error is not None:
                raise self._error
            if self._done:
                return None
            await self._wait()
        pieces = self._pieces
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._pieces = []
        if self._size > HIGH_WATER_BYTES:
            self._connection.resume()
        self._size = 0
        return data

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first `limit` bytes)."""
        parts: list[bytes] = []
        size = 0
        while (piece := await self.next_piece()) is not None:
            parts.append(piece)
            size += len(piece)
            if limit is not None and size >= limit:
                break
        body = b"".join(parts)
        return body if limit is None else body[:limit]

    def release(self) -> None:
        self._connection.done_with(self, reusable=self.complete)

    def close(self) -> None:
        self._connection.done_with(self, reusable=False)


class _Connection(asyncio.Protocol):
    """One keep-alive connection to an origin, carrying one exchange at a time."""

    def __init__(self, pool: HttpPool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)  # one per connection, as in uvicorn
        self._response: Response | None = None
        self._keep_alive = False
        self._close_delimited = False
        self._received_any = False
        self._paused = False
        self._last_data = 0.0
        self._read_timeout_s = 0.0
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._response is None or self._response._done:  # unasked for: out of step
            self.abort()
            return
        self._received_any = True
        self._last_data = self.loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._end(HttpFailure("sent a malformed HTTP response"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self._response
        if response is None or response._done:
            return
        if response.headers_done and self._close_delimited:
            response._finish()  # a body without length or chunks ends with the connection
        elif not self._received_any and self.idle_since:
            self._end(_StaleConnection("closed the kept-alive connection"))
        else:
            self._end(HttpFailure("closed the connection before the response was complete"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            self._close_delimited = False

    def on_headers_complete(self) -> None:
        response = self._response
        assert response is not None
        response.status = self._parser.get_status_code()
        response.headers_done = True
        if response.status in (204, 304) or response.status < 200:
            self._close_delimited = False
        response._wake()

    def on_body(self, body: bytes) -> None:
        assert self._response is not None
        self._response._feed(body)

    def on_message_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()
        self._close_delimited = False
        self._stop_timer()
        assert self._response is not None
        self._response._finish()

    # The pool's side.

    def start(self, request: bytes, read_timeout_s: float, total_s: float | None) -> Response:
        """Write a request; return its response, to be awaited with `wait_for_headers`."""
        response = Response(self)
        self._response = response  # the parser, past a complete answer, expects the next one
        self._keep_alive = False
        self._close_delimited = True
        self._received_any = False
        self._read_timeout_s = read_timeout_s
        now = self.loop.time()
        self._last_data = now
        self._deadline = None if total_s is None else now + total_s
        self._arm(read_timeout_s if total_s is None else min(read_timeout_s, total_s))
        assert self.transport is not None
        self.transport.write(request)
        return response

    def done_with(self, response: Response, *, reusable: bool) -> None:
        if response is not self._response:
            return
        self._response = None
        self._stop_timer()
        if reusable and self._keep_alive and not self.closed and not self._paused:
            self.idle_since = self.loop.time()
            self.pool.put_back(self)
        else:
            self.abort()

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self._last_data = self.loop.time()
            self.transport.resume_reading()

    def abort(self) -> None:
        """Close the connection at once (it is never reused)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _end(self, error: HttpFailure) -> None:
        self._stop_timer()
        if self._response is not None:
            self._response._fail(error)
        self.abort()

    # Timeouts: one timer per busy connection, re-armed only when it fires.

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(max(0.0, delay), self._check_timeouts)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_timeouts(self) -> None:
        self._timer = None
        if self._response is None or self._response._done:
            return
        now = self.loop.time()
        if self._deadline is not None and now >= self._deadline:
            self._end(HttpFailure("timed out (no complete answer in time)"))
            return
        if self._paused:
            self._last_data = now  # our reader is behind, not the upstream
        idle_until = self._last_data + self._read_timeout_s
        if now >= idle_until:
            self._end(HttpFailure(f"timed out (nothing received for {self._read_timeout_s:g}s)"))
            return
        next_check = idle_until if self._deadline is None else min(idle_until, self._deadline)
        self._arm(next_check - now)


class HttpPool:
    """The worker's connections to every upstream origin (no limit on their number)."""

    def __init__(self, *, connect_timeout_s: float, keepalive_s: float = 60.0) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._keepalive_s = keepalive_s
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closing = False

    async def post(
        self,
        origin: Origin,
        head: bytes,
        body: bytes,
        *,
        read_timeout_s: float,
        total_timeout_s: float | None = None,
    ) -> Response:
        """Send `head` (from `post_head`) with `body`; the response once its headers are in.
        Raises HttpFailure when the exchange fails before that."""
        request = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        connection = self._take_idle(origin)
        if connection is not None:
            try:
                return await self._exchange(connection, request, read_timeout_s, total_timeout_s)
            except _StaleConnection:
                pass
        connection = await self._connect(origin)
        return await self._exchange(connection, request, read_timeout_s, total_timeout_s)

    async def _exchange(
        self, connection: _Connection, request: bytes, read_s: float, total_s: float | None
    ) -> Response:
        response = connection.start(request, read_s, total_s)
        try:
            await response.wait_for_headers()
        except BaseException:
            response.close()
            raise
        return response

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    def put_back(self, connection: _Connection) -> None:
        if self._closing:
            connection.abort()
            return
        idle = self._idle.setdefault(connection.origin, [])
        expired_before = connection.idle_since - self._keepalive_s
        while idle and (
            idle[0].idle_since < expired_before or len(idle) >= IDLE_CONNECTIONS_PER_ORIGIN
        ):
            idle.pop(0).abort()
        idle.append(connection)

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(self, origin, loop)
        tls = _tls_context() if origin.tls else None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await loop.create_connection(
                    lambda: connection,
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            raise HttpFailure("unreachable (connect timed out)") from None
        except OSError as error:
            raise HttpFailure(f"unreachable ({type(error).__name__})") from None
        return connection

    async def close(self) -> None:
        self._closing = True
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()
