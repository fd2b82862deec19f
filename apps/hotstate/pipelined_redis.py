"""A lean asyncio Redis client for the gateway's hot path: one connection per use, every
command pipelined on it.

redis-py's asyncio client spent about half of the gateway's CPU per request (pool checkout,
packing in Python, a timeout context and a retry wrapper per command: docs/performance.md).
Here hiredis packs each command in C, everything callers queued during one turn of the event
loop goes out in one write, and hiredis.Reader parses the replies, which are handed to the
waiting callers in the order the commands were sent. Redis runs commands one at a time anyway,
so a single connection carries a worker's whole load without queueing behind a pool.

Failures are redis-py's exception classes (`ConnectionError`, `TimeoutError`, `ResponseError`,
`NoScriptError`), so callers handle them as before. A connection that does not answer within
`timeout_s` is dropped and every command waiting on it fails at once; the next command opens a
new connection (concurrent callers share one attempt), so a restarted Redis is picked up by
itself. Commands of `on_connect` (AUTH, SELECT, SCRIPT LOAD) are sent first on every new
connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = Sequence[object]


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a Redis server listens, and how to log in and pick the database."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a unix socket instead of host and port
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """`redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS), `unix://path?db=N`."""
        options = parse_url(url)
        return cls(
            host=options.get("host") or "127.0.0.1",
            port=int(options.get("port") or 6379),
            path=options.get("path"),
            db=int(options.get("db") or 0),
            username=options.get("username"),
            password=options.get("password"),
            tls=options.get("connection_class") is SSLConnection,
        )

    def login_commands(self) -> list[Command]:
        commands: list[Command] = []
        if self.password is not None:
            login = (self.username, self.password) if self.username else (self.password,)
            commands.append(("AUTH", *login))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


class _Waiter:
    """A caller waiting for `count` replies (one command, or a pipeline of several)."""

    __slots__ = ("count", "deadline", "future", "replies")

    def __init__(self, future: asyncio.Future[Any], deadline: float, count: int) -> None:
        self.future = future
        self.deadline = deadline
        self.count = count
        self.replies: list[Any] | None = [] if count > 1 else None


class _Connection(asyncio.Protocol):
    """One connection: writes batched per loop turn, replies matched to waiters in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float, name: str) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._name = name
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiters: deque[_Waiter] = deque()
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.broken: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, packed: bytes, count: int) -> asyncio.Future[Any]:
        """Queue packed command(s) expecting `count` replies; the future gets the reply (or
        the list of replies when `count` > 1)."""
        if self.broken is not None:
            raise RedisConnectionError(f"Connection to Redis at {self._name} was lost")
        future = self._loop.create_future()
        self._waiters.append(_Waiter(future, self._loop.time() + self._timeout_s, count))
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(packed)
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(self._timeout_s, self._check_deadline)
        return future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self.broken is None and self._transport is not None and outgoing:
            self._transport.write(b"".join(outgoing))

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            self._deliver(reply)

    def _deliver(self, reply: Any) -> None:
        waiter = self._waiters[0]
        if waiter.replies is not None:
            waiter.replies.append(reply)
            if len(waiter.replies) < waiter.count:
                return
            reply = waiter.replies
        self._waiters.popleft()
        future = waiter.future
        if future.done():  # the caller gave up (cancelled); the reply is dropped
            return
        if isinstance(reply, ResponseError):
            future.set_exception(_typed(reply))
        else:
            future.set_result(reply)

    def _check_deadline(self) -> None:
        self._watchdog = None
        if not self._waiters:
            return
        left = self._waiters[0].deadline - self._loop.time()
        if left > 0:
            self._watchdog = self._loop.call_later(left, self._check_deadline)
            return
        self.fail(RedisTimeoutError(f"Redis at {self._name} did not answer in {self._timeout_s}s"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection to Redis at {self._name} was lost"))

    def fail(self, error: Exception) -> None:
        """Drop the connection; every waiting caller gets `error`."""
        if self.broken is None:
            self.broken = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.abort()
        self._outgoing = []
        while self._waiters:
            future = self._waiters.popleft().future
            if not future.done():
                future.set_exception(error)


def _typed(error: ResponseError) -> ResponseError:
    message = str(error)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return error


def _packed(commands: Sequence[Command]) -> bytes:
    return b"".join(hiredis.pack_command(tuple(command)) for command in commands)


class PipelinedRedis:
    """Commands to one Redis server over one pipelined connection (see the module docstring).

    Not thread-safe: one instance belongs to one event loop.
    """

    def __init__(
        self,
        address: RedisAddress,
        *,
        timeout_s: float,
        connect_timeout_s: float | None = None,
        on_connect: Sequence[Command] = (),
    ) -> None:
        self.address = address
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s or timeout_s
        self._on_connect = [*address.login_commands(), *on_connect]
        self._connection: _Connection | None = None
        self._opening: asyncio.Future[_Connection] | None = None

    @property
    def timeout_s(self) -> float:
        """How long a command waits for its reply before the connection is dropped."""
        return self._timeout_s

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PipelinedRedis:
        return cls(RedisAddress.from_url(url), **options)

    async def execute(self, *command: object) -> Any:
        """Run one command; its reply (bytes, int, list, None)."""
        connection = self._connection
        if connection is None or connection.broken is not None:
            connection = await self._reconnect()
        return await connection.send(hiredis.pack_command(command), 1)

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Run several commands in one round trip (not a transaction: each runs on its own);
        their replies in order. An error reply is raised after all of them ran."""
        connection = self._connection
        if connection is None or connection.broken is not None:
            connection = await self._reconnect()
        replies = await connection.send(_packed(commands), len(commands))
        if len(commands) == 1:
            replies = [replies]
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise _typed(reply)
        return replies

    async def ping(self) -> bool:
        return await self.execute("PING") == b"PONG"

    async def aclose(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
        if self._connection is not None:
            self._connection.fail(RedisConnectionError("Connection closed by the client"))
            self._connection = None

    async def _reconnect(self) -> _Connection:
        """A new connection; callers arriving meanwhile share the same attempt."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def _opened(self, attempt: asyncio.Future[_Connection]) -> None:
        self._opening = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        address = self.address
        name = str(address)
        connection = _Connection(loop, self._timeout_s, name)
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if address.path:
                    await loop.create_unix_connection(lambda: connection, address.path)
                else:
                    tls = ssl.create_default_context() if address.tls else None
                    await loop.create_connection(
                        lambda: connection, address.host, address.port, ssl=tls
                    )
                if self._on_connect:
                    await self._greet(connection)
        except BaseException as error:
            connection.fail(RedisConnectionError(f"Could not connect to Redis at {name}"))
            if isinstance(error, TimeoutError):
                raise RedisTimeoutError(f"Timed out connecting to Redis at {name}") from None
            if isinstance(error, OSError):
                raise RedisConnectionError(
                    f"Error connecting to Redis at {name}: {error}"
                ) from None
            raise
        return connection

    async def _greet(self, connection: _Connection) -> None:
        count = len(self._on_connect)
        replies = await connection.send(_packed(self._on_connect), count)
        for reply in replies if count > 1 else [replies]:
            if isinstance(reply, ResponseError):
                raise RedisConnectionError(f"Redis refused the connection setup: {reply}")
