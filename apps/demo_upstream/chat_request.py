"""Parsing and validation of Chat Completions request bodies, with OpenAI-shaped errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from apps.demo_upstream.options import DemoOptions, OverrideError

MAX_CHOICES = 128


class RequestError(Exception):
    """A request the demo upstream refuses; renders as OpenAI's ``{"error": {...}}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type

    def body(self) -> dict[str, Any]:
        """Return the JSON body OpenAI sends for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a Chat Completions request the demo upstream acts on."""

    model: str
    messages: list[dict[str, Any]]
    options: DemoOptions  # server options with the request's "demo" overrides applied
    stream: bool = False
    include_usage: bool = False
    n: int = 1
    max_tokens: int | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: Any = None


def load_body(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object, else raise RequestError 400."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    return body


def apply_overrides(body: dict[str, Any], options: DemoOptions) -> DemoOptions:
    """Return ``options`` with the body's ``"demo"`` field applied, else raise 400."""
    try:
        return options.with_overrides(body.get("demo"))
    except OverrideError as exc:
        raise RequestError(400, str(exc), param="demo") from None


def parse_chat_request(body: dict[str, Any], options: DemoOptions) -> ChatRequest:
    """Validate a Chat Completions body and return it as a ChatRequest (RequestError if bad)."""
    stream = _optional_bool(body, "stream")
    stream_options = body.get("stream_options")
    include_usage = (
        stream and isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    )
    return ChatRequest(
        model=_model(body),
        messages=_messages(body),
        options=options,
        stream=stream,
        include_usage=include_usage,
        n=_choice_count(body),
        max_tokens=_max_tokens(body),
        tools=_tools(body),
        tool_choice=body.get("tool_choice"),
    )


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "You must provide a model parameter.", param="model")
    return model


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            400, "'messages' must be a non-empty array.", param="messages", code="invalid_type"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(
                400,
                f"'messages[{index}]' must be an object with a 'role'.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
    return messages


def _optional_bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(400, f"'{name}' must be a boolean.", param=name, code="invalid_type")
    return value


def _optional_int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(
            400,
            f"'{name}' must be an integer between {low} and {high}.",
            param=name,
            code="invalid_value",
        )
    return value


def _choice_count(body: dict[str, Any]) -> int:
    count = _optional_int(body, "n", 1, MAX_CHOICES)
    return 1 if count is None else count


def _max_tokens(body: dict[str, Any]) -> int | None:
    """Return ``max_completion_tokens``, else the older ``max_tokens``, else None."""
    limit = _optional_int(body, "max_completion_tokens", 1, 1 << 30)
    return limit if limit is not None else _optional_int(body, "max_tokens", 1, 1 << 30)


def _tools(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    tools = body.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise RequestError(400, "'tools' must be an array.", param="tools", code="invalid_type")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(
                400,
                f"'tools[{index}]' must have a function with a name.",
                param=f"tools[{index}]",
                code="invalid_type",
            )
    return tuple(tools)
