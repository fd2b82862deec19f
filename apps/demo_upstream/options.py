"""Server-wide options of the demo upstream and their per-request overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Fields of DemoOptions a request may override through its ``"demo"`` body field.
OVERRIDABLE_FIELDS: frozenset[str] = frozenset(
    {"completion_tokens", "latency_ms", "inter_token_ms", "fail_status"}
)


class OverrideError(ValueError):
    """A request's ``"demo"`` field is malformed; the message names the bad field."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How the demo upstream behaves.

    latency_ms: delay before the response (non-streaming) or its first chunk (streaming).
    inter_token_ms: delay between streamed chunks; a non-streaming answer waits as long as
        streaming its longest choice would have taken.
    completion_tokens: answer length in tokens unless ``max_tokens`` is smaller.
    context_window: prompts counting more tokens than this are rejected with 400.
    fail_status: when set, every chat request answers this HTTP status with an error body.
    api_key: when set, ``/v1/*`` requests need ``Authorization: Bearer <api_key>``.
    """

    latency_ms: int = 0
    inter_token_ms: float = 0
    completion_tokens: int = 16
    context_window: int = 131072
    fail_status: int | None = None
    api_key: str | None = None

    def __post_init__(self) -> None:
        """Reject values the server could not honour."""
        if self.latency_ms < 0 or self.inter_token_ms < 0:
            raise ValueError("latency_ms and inter_token_ms must not be negative")
        if self.completion_tokens < 0 or self.context_window < 1:
            raise ValueError("completion_tokens must be >= 0 and context_window >= 1")
        if self.fail_status is not None and not 400 <= self.fail_status <= 599:
            raise ValueError("fail_status must be an HTTP error status (400-599)")

    def with_overrides(self, demo: Any) -> DemoOptions:
        """Return these options updated by a request's ``"demo"`` object.

        Accepted keys are ``completion_tokens``, ``latency_ms``, ``inter_token_ms`` (numbers
        >= 0) and ``fail_status`` (400-599 or null). Raises OverrideError otherwise.
        """
        if demo is None:
            return self
        if not isinstance(demo, dict):
            raise OverrideError("'demo' must be an object")
        unknown = set(demo) - OVERRIDABLE_FIELDS
        if unknown:
            raise OverrideError(f"unknown 'demo' fields: {', '.join(sorted(unknown))}")
        for name, value in demo.items():
            _check_override(name, value)
        try:
            return dataclasses.replace(self, **demo)
        except ValueError as exc:
            raise OverrideError(str(exc)) from exc


def _check_override(name: str, value: Any) -> None:
    """Raise OverrideError unless ``value`` has the type the ``name`` field needs."""
    if name == "fail_status" and value is None:
        return
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if name == "inter_token_ms" and is_number:
        return
    if is_number and isinstance(value, int):
        return
    raise OverrideError(f"'demo.{name}' must be a {_expected_type(name)}")


def _expected_type(name: str) -> str:
    """Describe the JSON type an overridable field takes."""
    return "number" if name == "inter_token_ms" else "integer"
