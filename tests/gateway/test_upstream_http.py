"""The gateway's HTTP/1.1 upstream client against scripted loopback servers: framing, pieces
as they arrive, keep-alive reuse, timeouts, broken and malformed answers, flow control."""

import asyncio
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from apps.gateway import upstream_http
from apps.gateway.upstream_http import HttpFailure, HttpPool, post_head
from tests.support.loopback import Handler, LoopbackServer


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's body (the head is skipped); b"" when the client hung up."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


def ok_head(**headers: str) -> bytes:
    lines = [b"HTTP/1.1 200 OK"] + [
        f"{k.replace('_', '-')}: {v}".encode() for k, v in headers.items()
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def run(handler: Handler, scenario: Callable[[HttpPool, Any, Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = LoopbackServer(handler)
        async with server as port:
            pool = HttpPool(connect_timeout_s=2)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            origin, head = post_head(url, {"Content-Type": "application/json"})
            try:
                return await scenario(pool, origin, head), server.connections
            finally:
                await pool.close()

    return asyncio.run(main())


async def echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive: answer every request with its own body (Content-Length framing)."""
    while body := await read_request(reader):
        writer.write(ok_head(content_length=str(len(body))) + body)
        await writer.drain()


def test_bodies_come_back_whole_and_one_connection_carries_every_request():
    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> list[bytes]:
        bodies = []
        for i in range(20):
            response = await pool.post(origin, head, b'{"n": %d}' % i, read_timeout_s=2)
            assert response.status == 200
            bodies.append(await response.read())
            response.release()
        return bodies

    bodies, connections = run(echo_forever, scenario)
    assert bodies == [b'{"n": %d}' % i for i in range(20)]
    assert connections == 1


def test_concurrent_requests_open_connections_that_are_then_reused():
    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> set[bytes]:
        async def one(i: int) -> bytes:
            response = await pool.post(origin, head, b"%d" % i, read_timeout_s=2)
            body = await response.read()
            response.release()
            return body

        first = await asyncio.gather(*(one(i) for i in range(8)))
        second = await asyncio.gather(*(one(i) for i in range(8)))
        return {*first, *second}

    bodies, connections = run(echo_forever, scenario)
    assert bodies == {b"%d" % i for i in range(8)}
    assert connections == 8


def test_a_chunked_stream_is_handed_over_piece_by_piece_as_it_arrives():
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(transfer_encoding="chunked") + chunk(b"data: first\n\n"))
        await writer.drain()
        await release.wait()
        writer.write(chunk(b"data: second\n\n") + b"0\r\n\r\n")
        await writer.drain()
        await read_request(reader)

    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> list[bytes]:
        response = await pool.post(origin, head, b"{}", read_timeout_s=2)
        pieces = [await response.next_piece()]  # arrives while the server holds the rest
        release.set()
        while (piece := await response.next_piece()) is not None:
            pieces.append(piece)
        assert response.complete
        response.release()
        return pieces

    pieces, _ = run(handler, scenario)
    assert pieces == [b"data: first\n\n", b"data: second\n\n"]


def test_a_body_without_length_ends_with_the_connection():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head() + b"everything until close")
        await writer.drain()

    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> bytes:
        response = await pool.post(origin, head, b"{}", read_timeout_s=2)
        body = await response.read()
        response.release()
        return body

    assert run(handler, scenario)[0] == b"everything until close"


def test_an_upstream_that_goes_quiet_times_out_after_the_read_timeout():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(transfer_encoding="chunked") + chunk(b"data: one\n\n"))
        await writer.drain()
        await asyncio.sleep(30)

    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> float:
        response = await pool.post(origin, head, b"{}", read_timeout_s=0.3)
        assert await response.next_piece() == b"data: one\n\n"
        started = time.monotonic()
        with pytest.raises(HttpFailure, match=r"nothing received for 0\.3s"):
            await response.next_piece()
        return time.monotonic() - started

    waited, _ = run(handler, scenario)
    assert 0.2 < waited < 1.0


def test_a_trickling_answer_is_cut_at_the_total_deadline():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(transfer_encoding="chunked"))
        for _ in range(100):
            writer.write(chunk(b" "))
            await writer.drain()
            await asyncio.sleep(0.05)

    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> float:
        started = time.monotonic()
        response = await pool.post(origin, head, b"{}", read_timeout_s=1, total_timeout_s=0.4)
        with pytest.raises(HttpFailure, match="no complete answer in time"):
            await response.read()
        return time.monotonic() - started

    waited, _ = run(handler, scenario)
    assert 0.3 < waited < 1.5


def test_a_kept_alive_connection_the_upstream_closed_is_replaced_without_an_error():
    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request(reader)
        writer.write(ok_head(content_length=str(len(body))) + body)
        await writer.drain()  # then close, though the response said nothing of it

    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> list[bytes]:
        bodies = []
        for i in range(3):
            response = await pool.post(origin, head, b"%d" % i, read_timeout_s=2)
            bodies.append(await response.read())
            response.release()
            await asyncio.sleep(0.05)
        return bodies

    bodies, connections = run(answer_once, scenario)
    assert bodies == [b"0", b"1", b"2"]
    assert connections == 3


def test_a_connection_cut_mid_body_and_a_malformed_answer_are_failures():
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(content_length="100") + b"only part")
        await writer.drain()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def read_all(pool: HttpPool, origin: Any, head: bytes) -> str:
        async def exchange() -> bytes:
            response = await pool.post(origin, head, b"{}", read_timeout_s=2)
            return await response.read()

        with pytest.raises(HttpFailure) as caught:
            await exchange()
        return str(caught.value)

    assert "before the response was complete" in run(cut, read_all)[0]
    assert "malformed" in run(garbage, read_all)[0]


def test_an_unreachable_upstream_fails_at_once_without_naming_its_address():
    async def main() -> str:
        pool = HttpPool(connect_timeout_s=2)
        origin, head = post_head("http://127.0.0.1:1/v1/chat/completions", {})
        with pytest.raises(HttpFailure) as caught:
            await pool.post(origin, head, b"{}", read_timeout_s=1)
        return str(caught.value)

    message = asyncio.run(main())
    assert message.startswith("unreachable")
    assert "127.0.0.1" not in message


def test_a_reader_that_falls_behind_pauses_the_upstream():
    body = b"x" * (40 << 20)
    written_while_unread: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(content_length=str(len(body))))
        sent = 0
        started = time.monotonic()
        for offset in range(0, len(body), 1 << 16):
            writer.write(body[offset : offset + (1 << 16)])
            await writer.drain()
            sent += 1 << 16
            if not written_while_unread and time.monotonic() - started > 0.5:
                written_while_unread.append(sent)

    async def scenario(pool: HttpPool, origin: Any, head: bytes) -> int:
        response = await pool.post(origin, head, b"{}", read_timeout_s=5)
        await asyncio.sleep(0.8)  # not reading: the server must stall
        received = len(await response.read())
        response.release()
        return received

    received, _ = run(handler, scenario)
    assert received == len(body)
    assert written_while_unread
    assert written_while_unread[0] < 16 << 20  # held back, not all 40 MiB buffered


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_an_https_upstream_is_reached_over_verified_tls(tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)

    async def exchange(client_tls: ssl.SSLContext) -> bytes:
        monkeypatch.setattr(upstream_http, "_tls_context", lambda: client_tls)
        async with LoopbackServer(echo_forever, tls=server_tls) as port:
            pool = HttpPool(connect_timeout_s=2)
            origin, head = post_head(f"https://127.0.0.1:{port}/v1/chat/completions", {})
            try:
                response = await pool.post(origin, head, b'{"over": "tls"}', read_timeout_s=2)
                body = await response.read()
                response.release()
                return body
            finally:
                await pool.close()

    trusting = ssl.create_default_context(cafile=cert)
    assert asyncio.run(exchange(trusting)) == b'{"over": "tls"}'
    with pytest.raises(HttpFailure, match="unreachable"):
        asyncio.run(exchange(ssl.create_default_context()))  # the system CAs do not know it
