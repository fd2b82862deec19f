"""Validation of `POST /v1/chat/completions` bodies, with OpenAI's parameter ranges.

Type and range errors are 422 with `param` naming the field (`messages[2].tool_call_id`).
Fields not named here are forwarded to the upstream unchanged.
"""

from dataclasses import dataclass
from typing import Any

from apps.gateway.errors import ApiError, invalid_param

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
TOOL_CHOICE_WORDS = frozenset({"none", "auto", "required"})
MAX_STOP_SEQUENCES = 4
MAX_TOKENS_LIMIT = 128_000

NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "frequency_penalty": (-2, 2),
    "presence_penalty": (-2, 2),
}
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "max_tokens": (1, MAX_TOKENS_LIMIT),
    "max_completion_tokens": (1, MAX_TOKENS_LIMIT),
    "n": (1, 128),
}


@dataclass(slots=True)
class ChatRequest:
    """A validated request; `body` is the client's JSON object, forwarded almost as is."""

    body: dict[str, Any]
    model: str | None
    stream: bool
    include_usage: bool
    max_tokens: int | None


def validate_chat_request(body: object) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise invalid_param("model", "`model` must be a non-empty string.")
    _check_messages(body.get("messages"))
    _check_numbers(body)
    _check_stop(body.get("stop"))
    stream = _optional_bool(body, "stream")
    include_usage = _check_stream_options(body.get("stream_options"))
    _check_tools(body.get("tools"), body.get("tool_choice"))
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return ChatRequest(body, model, stream, stream and include_usage, max_tokens)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_numbers(body: dict[str, Any]) -> None:
    for name, (low, high) in NUMBER_RANGES.items():
        value = body.get(name)
        if value is not None and (not _is_number(value) or not low <= value <= high):
            raise invalid_param(name, f"`{name}` must be a number from {low} to {high}.")
    for name, (low, high) in INTEGER_RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise invalid_param(name, f"`{name}` must be an integer from {low} to {high}.")


def _optional_bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_param(name, f"`{name}` must be a boolean.")
    return value


def _check_stop(stop: object) -> None:
    if stop is None or isinstance(stop, str):
        return
    if (
        not isinstance(stop, list)
        or len(stop) > MAX_STOP_SEQUENCES
        or not all(isinstance(item, str) for item in stop)
    ):
        raise invalid_param("stop", "`stop` must be a string or a list of at most 4 strings.")


def _check_stream_options(options: object) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict):
        raise invalid_param("stream_options", "`stream_options` must be an object.")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise invalid_param(
            "stream_options.include_usage", "`stream_options.include_usage` must be a boolean."
        )
    return include


def _check_messages(messages: object) -> None:
    if messages is None:
        raise invalid_param("messages", "`messages` is required.")
    if not isinstance(messages, list) or not messages:
        raise invalid_param("messages", "`messages` must be a non-empty array.")
    for index, message in enumerate(messages):
        _check_message(f"messages[{index}]", message)


def _check_message(where: str, message: object) -> None:
    if not isinstance(message, dict):
        raise invalid_param(where, f"`{where}` must be an object.")
    role = message.get("role")
    if role not in ROLES:
        raise invalid_param(
            f"{where}.role", f"`{where}.role` must be one of system, user, assistant, tool."
        )
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise invalid_param(f"{where}.content", f"`{where}.content` must be a string or array.")
    if content is None and role != "assistant":
        raise invalid_param(f"{where}.content", f"`{where}.content` is required.")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise invalid_param(
            f"{where}.tool_call_id", f"`{where}.tool_call_id` is required for tool messages."
        )
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and (role != "assistant" or not isinstance(tool_calls, list)):
        raise invalid_param(
            f"{where}.tool_calls", f"`{where}.tool_calls` is an array on assistant messages only."
        )


def _check_tools(tools: object, tool_choice: object) -> None:
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_param("tools", "`tools` must be an array.")
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise invalid_param(
                    f"tools[{index}].function.name", "Each tool needs a `function.name` string."
                )
    if tool_choice is None or tool_choice in TOOL_CHOICE_WORDS:
        return
    if not isinstance(tool_choice, dict):
        raise invalid_param(
            "tool_choice", "`tool_choice` must be none, auto, required or a tool object."
        )
