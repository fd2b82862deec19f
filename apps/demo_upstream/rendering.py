"""OpenAI wire shapes of planned answers: the chat.completion body and SSE chunk bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from apps.demo_upstream.answers import Choice
from apps.demo_upstream.vocabulary import piece_json

DONE_EVENT = b"data: [DONE]\n\n"
ARGUMENT_PIECE_CHARS = 8  # streamed tool-call arguments arrive in pieces of this size


def usage_of(prompt_tokens: int, choices: list[Choice]) -> dict[str, int]:
    """Return OpenAI's usage object; completion tokens are summed over all choices."""
    completion_tokens = sum(choice.completion_tokens for choice in choices)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    completion_id: str, created: int, model: str, choices: list[Choice], usage: dict[str, int]
) -> bytes:
    """Return the JSON of a non-streaming ``chat.completion`` response."""
    return orjson.dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [_choice_object(choice) for choice in choices],
            "usage": usage,
        }
    )


def _choice_object(choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content}
    if choice.tool_call is not None:
        call = choice.tool_call
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        ]
    return {
        "index": choice.index,
        "message": message,
        "logprobs": None,
        "finish_reason": choice.finish_reason,
    }


class ChunkEncoder:
    """Encodes the ``chat.completion.chunk`` events of one streamed response.

    Content chunks, the bulk of a stream, are assembled from precomputed byte strings;
    the few other chunks go through orjson. With ``include_usage`` every chunk carries
    ``"usage": null`` except the final usage chunk, as OpenAI does.
    """

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        head = orjson.dumps({**self._base, "choices": None})[: -len(b"null}")]
        self._choices_head = b"data: " + head + b'[{"index":'
        self._content_tail = (
            b'},"logprobs":null,"finish_reason":null}]'
            + (b',"usage":null' if include_usage else b"")
            + b"}\n\n"
        )
        self._content_heads: dict[int, bytes] = {}

    def content(self, index: int, piece: str) -> bytes:
        """Return the event carrying ``piece`` of choice ``index``'s content."""
        head = self._content_heads.get(index)
        if head is None:
            head = self._choices_head + b'%d,"delta":{"content":' % index
            self._content_heads[index] = head
        return b"".join((head, piece_json(piece), self._content_tail))

    def delta(self, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        """Return an event with an arbitrary ``delta`` (role, tool calls, or the final {})."""
        chunk: dict[str, Any] = {
            **self._base,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self._include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def usage(self, usage: dict[str, int]) -> bytes:
        """Return the final event with no choices and the response's usage."""
        return b"data: " + orjson.dumps({**self._base, "choices": [], "usage": usage}) + b"\n\n"


def choice_steps(encoder: ChunkEncoder, choice: Choice) -> Iterator[bytes]:
    """Yield one choice's events grouped into steps, one token per step.

    The first step also holds the opening role chunk and the last step the finish chunk,
    so a caller that waits between steps paces tokens, not bookkeeping chunks.
    """
    tokens = _token_events(encoder, choice)
    pending = _opening_event(encoder, choice) + next(tokens, b"")
    for event in tokens:
        yield pending
        pending = event
    yield pending + encoder.delta(choice.index, {}, choice.finish_reason)


def _opening_event(encoder: ChunkEncoder, choice: Choice) -> bytes:
    """Return the first event: the assistant role, plus the tool call's id and name."""
    call = choice.tool_call
    if call is None:
        return encoder.delta(choice.index, {"role": "assistant", "content": ""})
    tool_call = {
        "index": 0,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    return encoder.delta(
        choice.index, {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    )


def _token_events(encoder: ChunkEncoder, choice: Choice) -> Iterator[bytes]:
    """Yield an event per content piece, or per piece of the tool call's arguments."""
    if choice.tool_call is None:
        for piece in choice.pieces:
            yield encoder.content(choice.index, piece)
        return
    arguments = choice.tool_call.arguments
    for start in range(0, len(arguments), ARGUMENT_PIECE_CHARS):
        piece = arguments[start : start + ARGUMENT_PIECE_CHARS]
        delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        yield encoder.delta(choice.index, delta)
