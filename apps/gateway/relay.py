"""Relaying an upstream's server-sent events to the client as they arrive.

Each `chat.completion.chunk` is re-labelled with the public model name and written at once:
nothing is held back. The upstream body is read as it arrives, whatever the network delivered
in one read (one event or several) is rewritten and written to the client in one send.
Ordinary chunks are rewritten as bytes (one regular expression for the model name); only
chunks that carry usage or an error are parsed. The gateway always asks the
upstream for the final usage chunk (it needs it to meter); that chunk, and the `usage: null`
fields that come with it, are removed unless the client asked for them. An upstream failure
after the first byte ends the stream with a final `data: {"error": ...}` event.
"""

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from apps.gateway.asgi_io import Headers, Send
from apps.gateway.errors import ApiError, upstream_failed
from apps.gateway.upstream_http import HttpFailure, Response

log = logging.getLogger(__name__)

DONE_EVENT = b"data: [DONE]\n\n"
DRAIN_AFTER_DONE_S = 1.0
COST_PLACEHOLDER = "__tollgate_cost__"
COST_BYTES = f'"{COST_PLACEHOLDER}"'.encode()
MODEL_FIELD = re.compile(rb'"model"\s*:\s*"(?:[^"\\]|\\.)*"')
NULL_USAGE = b'"usage":null'
NULL_USAGE_AFTER = re.compile(rb',\s*"usage"\s*:\s*null')
NULL_USAGE_BEFORE = re.compile(rb'"usage"\s*:\s*null\s*,')
ERROR_EVENT = re.compile(rb'\{\s*"error"\s*:')
USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
CONTENT_STARTS = re.compile(rb'"content"\s*:\s*"[^"]')


@dataclass(slots=True)
class StreamOutcome:
    """What happened on a relayed stream, for metering."""

    usage: dict[str, Any] | None = None
    error: str | None = None
    raw_chunks: list[bytes] = field(default_factory=list)
    first_token_at_ms: int | None = None

    def generated_text(self) -> list[str]:
        """The content relayed so far (parsed only when the stream was cut short)."""
        parts: list[str] = []
        for raw in self.raw_chunks:
            for choice in orjson.loads(raw).get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
        return parts


class Relabeller:
    """Rewrites the upstream events of one stream for the client."""

    __slots__ = ("_seen", "client_wants_usage", "model_field", "price_usage", "public_model")

    def __init__(
        self, public_model: str, client_wants_usage: bool, price_usage: Callable[[dict], str]
    ) -> None:
        self.public_model = public_model
        self.client_wants_usage = client_wants_usage
        self.price_usage = price_usage
        self.model_field = b'"model":' + orjson.dumps(public_model)
        self._seen = b""  # the upstream's `"model": "..."` bytes, as last found

    def relabel(self, data: bytes) -> bytes:
        """`data` with its first `model` field naming the public model. An upstream repeats
        the same field in every chunk: once found by the regular expression, it is recognised
        by a byte comparison at the first `"model"` key (a quote inside a JSON string is
        escaped, so the search cannot hit text)."""
        seen = self._seen
        at = data.find(b'"model"')
        if at < 0:
            return data
        if seen and data.startswith(seen, at):
            return data[:at] + self.model_field + data[at + len(seen) :]
        match = MODEL_FIELD.match(data, at)
        if match is None:
            return data
        self._seen = match.group(0)
        return data[:at] + self.model_field + data[match.end() :]

    def rewrite(self, data: bytes, outcome: StreamOutcome) -> bytes | None:
        """The event for the client, or None when it must be dropped."""
        # Cheap byte tests first, regular expressions only when they may match; a quote
        # inside a JSON string is escaped, so text cannot fake them.
        usage_at = data.find(b'"usage"')
        null_usage = usage_at >= 0 and data.startswith(NULL_USAGE, usage_at)
        if _is_error_event(data) or (
            usage_at >= 0 and not null_usage and USAGE_OBJECT.search(data)
        ):
            return self._rewrite_parsed(data, outcome)
        outcome.raw_chunks.append(data)
        if outcome.first_token_at_ms is None and CONTENT_STARTS.search(data):
            outcome.first_token_at_ms = int(time.time() * 1000)
        if usage_at >= 0 and not self.client_wants_usage:
            data = _without_null_usage(data, usage_at if null_usage else -1)
        return b"data: " + self.relabel(data) + b"\n\n"

    def _rewrite_parsed(self, data: bytes, outcome: StreamOutcome) -> bytes | None:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise upstream_failed("the upstream sent an event that is not JSON") from None
        if not isinstance(chunk, dict):
            raise upstream_failed("the upstream sent an event that is not a JSON object")
        if "error" in chunk:
            error = chunk.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            raise upstream_failed(str(message or "upstream error"))
        outcome.usage = chunk["usage"]
        if chunk.get("choices"):
            outcome.raw_chunks.append(data)
        chunk["model"] = self.public_model
        if not self.client_wants_usage:
            if not chunk.get("choices"):
                return None
            chunk.pop("usage", None)
            return b"data: " + orjson.dumps(chunk) + b"\n\n"
        chunk["usage"]["cost"] = COST_PLACEHOLDER
        text = orjson.dumps(chunk).replace(COST_BYTES, self.price_usage(chunk["usage"]).encode(), 1)
        return b"data: " + text + b"\n\n"


def _is_error_event(data: bytes) -> bool:
    """`{"error": …}` (an object whose first member is `error`)."""
    if data.startswith(b'{"error"'):
        return True
    return data[1:2].isspace() and ERROR_EVENT.match(data) is not None


def _without_null_usage(data: bytes, at: int) -> bytes:
    """`data` without its `"usage": null` member; `at` is where a compact one starts (-1:
    find it by regular expression)."""
    if at >= 0:
        end = at + len(NULL_USAGE)
        if data[at - 1 : at] == b",":
            return data[: at - 1] + data[end:]
        if data[end : end + 1] == b",":
            return data[:at] + data[end + 1 :]
    data, removed = NULL_USAGE_AFTER.subn(b"", data, count=1)
    return data if removed else NULL_USAGE_BEFORE.sub(b"", data, count=1)


class SseLines:
    """Cuts what the upstream sends into lines (a line may span reads) and rewrites the
    `data:` ones. Other lines (comments, `event:`, blank separators) are dropped: the client
    gets the re-labelled `data:` events, each followed by a blank line."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def rewrite(
        self, received: bytes, relabeller: Relabeller, outcome: StreamOutcome
    ) -> tuple[bytes, bool]:
        """(the bytes for the client, whether the stream is over: `data: [DONE]` was seen, or
        the upstream sent an error event, which is then in `outcome.error`)."""
        if (
            not self._partial
            and received.startswith(b"data: ")
            and received.find(b"\n") == len(received) - 2
            and received.endswith(b"\n\n")
        ):
            return self._one_event(received[6:-2], relabeller, outcome)
        if self._partial:
            received = self._partial + received
        cut = received.rfind(b"\n") + 1
        self._partial = received[cut:]
        out: list[bytes] = []
        try:
            for line in received[:cut].splitlines():
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return b"".join(out), True
                event = relabeller.rewrite(data, outcome)
                if event is not None:
                    out.append(event)
        except ApiError as error:  # the events before it still go out
            outcome.error = error.message
            return b"".join(out), True
        return b"".join(out), False

    def _one_event(
        self, data: bytes, relabeller: Relabeller, outcome: StreamOutcome
    ) -> tuple[bytes, bool]:
        """The common case: one read brought exactly one `data:` event."""
        if data == b"[DONE]":
            return b"", True
        try:
            return relabeller.rewrite(data, outcome) or b"", False
        except ApiError as error:
            outcome.error = error.message
            return b"", True

    def rewrite_rest(self, relabeller: Relabeller, outcome: StreamOutcome) -> bytes:
        """At the end of the body: the last line, if it came without a line break."""
        return self.rewrite(b"\n", relabeller, outcome)[0] if self._partial else b""


async def relay_stream(
    send: Send,
    response: Response,
    *,
    relabeller: Relabeller,
    headers: Headers,
    outcome: StreamOutcome,
) -> None:
    """Copy the upstream stream to the client; fill `outcome` as it goes."""
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    events = SseLines()
    finished = False
    try:
        while (received := await response.next_piece()) is not None:
            out, finished = events.rewrite(received, relabeller, outcome)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
            if finished:
                break
        if not finished and (out := events.rewrite_rest(relabeller, outcome)):
            await send({"type": "http.response.body", "body": out, "more_body": True})
    except HttpFailure as failure:
        outcome.error = f"the upstream {failure}"
    except BaseException:  # cancelled: the client left
        response.close()
        raise
    if outcome.error is not None:
        response.close()
        log.warning("stream ended early: %s", outcome.error)
        final = b"data: " + upstream_failed(f"The model stopped answering: {outcome.error}.").body()
        await send({"type": "http.response.body", "body": final + b"\n\n", "more_body": False})
        return
    await send({"type": "http.response.body", "body": DONE_EVENT, "more_body": False})


async def finish_reading(response: Response) -> None:
    """After `[DONE]` the upstream's body ends, usually in the same packet or the next: read
    that end so the connection can carry the next request, or close it if it does not come
    soon."""
    if response.complete:
        response.release()
        return
    try:
        async with asyncio.timeout(DRAIN_AFTER_DONE_S):
            while await response.next_piece() is not None:
                pass
    except (HttpFailure, TimeoutError):
        pass
    except BaseException:
        response.close()
        raise
    response.release()
