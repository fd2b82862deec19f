"""The demo's embedded Redis-compatible store: fakeredis's TCP server in a background thread.

It speaks the Redis protocol on a loopback port, runs Lua through lupa (EVAL/EVALSHA) and keeps
everything in memory, so the demo needs no Redis installed. Its data is lost when it stops.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import redis
from fakeredis import TcpFakeServer
from fakeredis._clients._tcp_server import TCPFakeRequestHandler
from redis.backoff import NoBackoff
from redis.retry import Retry

JOIN_TIMEOUT_S = 5.0


class _ErrorRepliesKeepConnection:
    """The fakeredis connection behind one TCP client, returning error replies instead of
    raising them.

    fakeredis 2.40's request handler treats a raised error reply as fatal: it writes it, then
    closes the TCP connection. Real Redis keeps the connection, and redis-py depends on that:
    ``Script`` answers NOSCRIPT with SCRIPT LOAD on the same connection, which fails on the
    closed socket, so every EVALSHA of a script not yet loaded ends in a ConnectionError
    (fakeredis-py issue #432). Returned, the error is written like any reply and the loop
    goes on.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def read_response(self, **kwargs: Any) -> Any:
        try:
            return self._connection.read_response(**kwargs)
        except redis.ResponseError as error:
            return error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _RequestHandler(TCPFakeRequestHandler):
    def setup(self) -> None:
        super().setup()
        self.current_client = _ErrorRepliesKeepConnection(self.current_client)  # type: ignore[assignment]


class _StoreServer(TcpFakeServer):
    """TcpFakeServer whose connections survive error replies."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address)
        self.RequestHandlerClass = _RequestHandler


class EmbeddedStore:
    """fakeredis's TcpFakeServer bound to ``host:port`` (0: any free port), served by a thread.

    ``start()`` binds the port (raising OSError if it is taken) and serves; ``stop()`` closes
    every client connection and joins the threads. Both are idempotent.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: _StoreServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``redis://host:port/0`` of the running store."""
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        """Bind and serve in a daemon thread; the store answers as soon as this returns."""
        if self._server is not None:
            return
        server = _StoreServer((self.host, self.port))
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="embedded-redis", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close every connection (handler threads exit within ~10 ms)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)

    def __enter__(self) -> EmbeddedStore:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def check_store(url: str) -> None:
    """Raise redis.RedisError unless the store at ``url`` does what Tollgate relies on.

    On one connection, with retries off (a dropped connection must not be papered over): a
    script unknown to the server (EVALSHA → NOSCRIPT → SCRIPT LOAD → EVALSHA, as redis-py's
    ``Script`` does, with TIME inside Lua), then SET EX, HSET and HGETALL.
    """
    client = redis.Redis.from_url(
        url, socket_timeout=5, single_connection_client=True, retry=Retry(NoBackoff(), 0)
    )
    probe = f"{{quickstart}}:probe:{uuid.uuid4().hex}"
    try:
        script = client.register_script(f"-- {probe}\nreturn redis.call('TIME')")
        script()
        script()
        client.set(probe, "1", ex=60)
        client.hset(f"{probe}:hash", mapping={"a": 1})
        if client.hgetall(f"{probe}:hash") != {b"a": b"1"}:
            raise redis.ResponseError("HSET/HGETALL round trip failed")
        client.delete(probe, f"{probe}:hash")
    finally:
        client.close()
