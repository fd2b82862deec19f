"""Deterministic answers of the demo upstream: text from the vocabulary, or one tool call.

Everything is derived from a hash of the request's messages (never Python's randomised
``hash()``), so identical requests get identical answers in every process.
"""

from __future__ import annotations

import hashlib
import string
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from apps.demo_upstream.chat_request import ChatRequest
from apps.demo_upstream.tokens import content_text, count_text_tokens
from apps.demo_upstream.vocabulary import word_pieces

TOOL_RESULT_WORDS = 6  # words of the tool's output quoted at the start of the answer
FALLBACK_ARGUMENT = "demo"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the assistant asks for; ``arguments`` is a JSON object string."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Choice:
    """One planned choice: content pieces (tokens) or a tool call, with its accounting."""

    index: int
    pieces: list[str]
    tool_call: ToolCall | None
    completion_tokens: int
    finish_reason: str

    @property
    def content(self) -> str | None:
        """The full message content; None for a tool call, as OpenAI sends it."""
        return None if self.tool_call is not None else "".join(self.pieces)


def plan_choices(request: ChatRequest) -> list[Choice]:
    """Return the ``n`` choices answering ``request``, each deterministic for its index."""
    digest = hashlib.blake2b(
        orjson.dumps(request.messages, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()
    if wants_tool_call(request):
        return [_tool_choice(request, digest, index) for index in range(request.n)]
    prefix = _tool_result_prefix(request.messages)
    target, finish_reason = _answer_length(request)
    seed = int.from_bytes(digest[:4], "big")
    return [
        _text_choice(index, zlib.crc32(b"%d" % index, seed), prefix, target, finish_reason)
        for index in range(request.n)
    ]


def wants_tool_call(request: ChatRequest) -> bool:
    """True when tools are offered, tool_choice allows them and no tool result is pending."""
    return (
        bool(request.tools)
        and request.tool_choice != "none"
        and request.messages[-1].get("role") != "tool"
    )


def _answer_length(request: ChatRequest) -> tuple[int, str]:
    """Return the answer length in tokens and the finish_reason it implies."""
    requested = request.options.completion_tokens
    if request.max_tokens is not None and request.max_tokens < requested:
        return request.max_tokens, "length"
    return requested, "stop"


def _text_choice(
    index: int, seed: int, prefix: list[str], target: int, finish_reason: str
) -> Choice:
    """Fill ``target`` tokens: as much of ``prefix`` as fits, then vocabulary words."""
    pieces: list[str] = []
    used = 0
    for piece in prefix:
        cost = count_text_tokens(piece)
        if used + cost > target:
            break
        pieces.append(piece)
        used += cost
    pieces.extend(word_pieces(seed, target - used, first_is_bare=not pieces))
    return Choice(index, pieces, None, target, finish_reason)


def _tool_result_prefix(messages: list[dict[str, Any]]) -> list[str]:
    """Return ``["Tool", " result:", " w1", ...]`` quoting a trailing tool message, else []."""
    last = messages[-1]
    if last.get("role") != "tool":
        return []
    words = content_text(last.get("content")).split()[:TOOL_RESULT_WORDS]
    return ["Tool", " result:", *(" " + word for word in words)]


def _tool_choice(request: ChatRequest, digest: bytes, index: int) -> Choice:
    """Return a choice calling the selected tool with arguments filling its required fields."""
    function = _selected_function(request)
    name = function["name"]
    arguments = build_arguments(function.get("parameters"), _last_user_word(request.messages))
    call_id = "call_" + hashlib.blake2b(digest + b"%d" % index, digest_size=12).hexdigest()
    tokens = count_text_tokens(name) + count_text_tokens(arguments)
    return Choice(index, [], ToolCall(call_id, name, arguments), tokens, "tool_calls")


def _selected_function(request: ChatRequest) -> dict[str, Any]:
    """Return the function named by tool_choice, else the first tool's function."""
    choice = request.tool_choice
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        for tool in request.tools:
            if tool["function"]["name"] == wanted:
                return tool["function"]
        if isinstance(wanted, str):
            return {"name": wanted}
    return request.tools[0]["function"]


def _last_user_word(messages: list[dict[str, Any]]) -> str:
    """Return the last word of the last user message without punctuation, or "demo"."""
    for message in reversed(messages):
        if message.get("role") == "user":
            words = content_text(message.get("content")).split()
            word = words[-1].strip(string.punctuation) if words else ""
            return word or FALLBACK_ARGUMENT
    return FALLBACK_ARGUMENT


def build_arguments(parameters: Any, word: str) -> str:
    """Return a JSON object string giving every ``required`` property a sample value.

    Strings get ``word``, numbers and integers 1, booleans true, arrays [], objects {};
    a property with an ``enum`` gets its first member.
    """
    if not isinstance(parameters, dict):
        return "{}"
    properties = parameters.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = parameters.get("required")
    names = (
        [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
    )
    values = {name: _sample_value(properties.get(name), word) for name in names}
    return orjson.dumps(values).decode()


_SAMPLES: dict[str, Any] = {"number": 1, "integer": 1, "boolean": True, "null": None}


def _sample_value(schema: Any, word: str) -> Any:
    """Return a value valid for a simple JSON-schema ``schema`` (``word`` for strings)."""
    if not isinstance(schema, dict):
        return word
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return _SAMPLES.get(kind, word) if isinstance(kind, str) else word
