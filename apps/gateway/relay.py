"""Relaying an upstream's server-sent events to the client as they arrive.

Each `chat.completion.chunk` is re-labelled with the public model name and written at once:
nothing is buffered. Ordinary chunks are rewritten as bytes (one regular expression for the
model name); only chunks that carry usage or an error are parsed. The gateway always asks the
upstream for the final usage chunk (it needs it to meter); that chunk, and the `usage: null`
fields that come with it, are removed unless the client asked for them. An upstream failure
after the first byte ends the stream with a final `data: {"error": ...}` event.
"""

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from apps.gateway.asgi_io import Headers, Send
from apps.gateway.errors import ApiError, upstream_failed

log = logging.getLogger(__name__)

DONE_EVENT = b"data: [DONE]\n\n"
COST_PLACEHOLDER = "__tollgate_cost__"
COST_BYTES = f'"{COST_PLACEHOLDER}"'.encode()
MODEL_FIELD = re.compile(rb'"model"\s*:\s*"(?:[^"\\]|\\.)*"')
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


@dataclass(frozen=True, slots=True)
class Relabeller:
    """Rewrites one upstream event for the client."""

    public_model: str
    client_wants_usage: bool
    price_usage: Callable[[dict[str, Any]], str]
    model_field: bytes = b""

    @classmethod
    def for_model(
        cls, public_model: str, client_wants_usage: bool, price_usage: Callable
    ) -> "Relabeller":
        field = b'"model":' + orjson.dumps(public_model)
        return cls(public_model, client_wants_usage, price_usage, field)

    def rewrite(self, data: bytes, outcome: StreamOutcome) -> bytes | None:
        """The event for the client, or None when it must be dropped."""
        if ERROR_EVENT.match(data) or USAGE_OBJECT.search(data):
            return self._rewrite_parsed(data, outcome)
        outcome.raw_chunks.append(data)
        if outcome.first_token_at_ms is None and CONTENT_STARTS.search(data):
            outcome.first_token_at_ms = int(time.time() * 1000)
        data = MODEL_FIELD.sub(self.model_field, data, count=1)
        if not self.client_wants_usage:
            data, removed = NULL_USAGE_AFTER.subn(b"", data, count=1)
            if not removed:
                data = NULL_USAGE_BEFORE.sub(b"", data, count=1)
        return b"data: " + data + b"\n\n"

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


async def relay_stream(
    send: Send,
    response: aiohttp.ClientResponse,
    *,
    relabeller: Relabeller,
    headers: Headers,
    outcome: StreamOutcome,
) -> None:
    """Copy the upstream stream to the client; fill `outcome` as it goes."""
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    try:
        async for line in response.content:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            event = relabeller.rewrite(data, outcome)
            if event is not None:
                await send({"type": "http.response.body", "body": event, "more_body": True})
    except (aiohttp.ClientError, TimeoutError) as error:
        outcome.error = f"upstream stream broke off ({type(error).__name__})"
    except ApiError as error:
        outcome.error = error.message
    finally:
        response.release()
    if outcome.error is not None:
        log.warning("stream ended early: %s", outcome.error)
        final = b"data: " + upstream_failed(f"The model stopped answering: {outcome.error}.").body()
        final += b"\n\n"
    else:
        final = DONE_EVENT
    await send({"type": "http.response.body", "body": final, "more_body": False})
