"""Small ASGI helpers: reading the request, writing responses, request ids."""

import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from apps.gateway.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def new_request_id() -> bytes:
    """The server's own id of a request: what metering, holds and logs are keyed by."""
    return b"req_" + os.urandom(12).hex().encode()


def request_id_headers(scope: Scope, request_id: bytes) -> Headers:
    """`x-request-id` echoes a sane client-sent id (else ours); when it echoes the client's,
    `x-tollgate-request-id` carries ours, which usage records and support questions use.
    A client's id never keys metering: reusing one must not merge two requests' charges."""
    sent = header(scope, b"x-request-id")
    if sent is not None and SANE_REQUEST_ID.fullmatch(sent):
        return [(b"x-request-id", sent), (b"x-tollgate-request-id", request_id)]
    return [(b"x-request-id", request_id)]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 as soon as it is known to exceed `limit` bytes."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def body_too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"The request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
    )


class ClientGone(Exception):
    """The client disconnected before we answered."""


async def send_response(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: ApiError, headers: Headers) -> None:
    extra = [(name.encode(), value.encode()) for name, value in error.headers.items()]
    extra += error.extra_headers
    await send_response(send, error.status, error.body(), JSON_HEADERS + headers + extra)
