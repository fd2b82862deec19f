"""Tollgate's OpenAI-compatible demo upstream: a deterministic, fast stand-in for an LLM.

Endpoints:
    POST /v1/chat/completions  OpenAI Chat Completions, streaming or not (see answers.py)
    GET  /v1/models            OpenAI model list (any model id is accepted on chat)
    GET  /healthz              200 "ok"
    GET  /stats                counters as JSON; POST /stats/reset zeroes them

Requests may carry ``"demo": {"completion_tokens", "latency_ms", "inter_token_ms",
"fail_status"}`` to override the server's DemoOptions for that request only.

Run it with ``start_demo_upstream`` (inside an event loop), ``DemoUpstreamThread`` (from
synchronous code such as tests) or ``manage.py run_demo_upstream``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web

from apps.demo_upstream.answers import Choice, plan_choices
from apps.demo_upstream.chat_request import (
    ChatRequest,
    RequestError,
    apply_overrides,
    load_body,
    parse_chat_request,
)
from apps.demo_upstream.options import DemoOptions
from apps.demo_upstream.rendering import (
    DONE_EVENT,
    ChunkEncoder,
    choice_steps,
    completion_body,
    usage_of,
)
from apps.demo_upstream.tokens import count_prompt_tokens, get_encoding

__all__ = [
    "OPTIONS_KEY",
    "STATS_KEY",
    "DemoOptions",
    "DemoStats",
    "DemoUpstreamThread",
    "build_app",
    "start_demo_upstream",
]

logger = logging.getLogger(__name__)

MODEL_IDS: tuple[str, ...] = ("google/gemma-3-4b-it", "demo-small", "demo-large")
MODELS_CREATED = 1735689600  # 2025-01-01, fixed so the listing is stable
MAX_BODY_BYTES = 64 * 1024 * 1024  # a full 128k-token prompt fits comfortably
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
ERROR_TYPES = {401: "invalid_request_error", 429: "requests"}


@dataclass(slots=True)
class DemoStats:
    """Counters of one running app, served by ``GET /stats``.

    requests: chat completion requests received (including refused ones).
    completions: chat requests fully answered (streams: sent up to ``[DONE]``).
    errors: chat requests answered with an error status.
    streams_started / streams_cancelled: streams begun / abandoned by their client.
    prompt_tokens / completion_tokens: usage totals of answered requests.
    """

    requests: int = 0
    completions: int = 0
    errors: int = 0
    streams_started: int = 0
    streams_cancelled: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return dataclasses.asdict(self)

    def reset(self) -> None:
        """Zero every counter."""
        for field in dataclasses.fields(self):
            setattr(self, field.name, 0)


def _models_body() -> bytes:
    data = [
        {"id": model_id, "object": "model", "created": MODELS_CREATED, "owned_by": "tollgate-demo"}
        for model_id in MODEL_IDS
    ]
    return orjson.dumps({"object": "list", "data": data})


_MODELS_BODY = _models_body()
OPTIONS_KEY = web.AppKey("demo_options", DemoOptions)
STATS_KEY = web.AppKey("demo_stats", DemoStats)


def build_app(options: DemoOptions | None = None) -> web.Application:
    """Return the demo upstream application configured by ``options``."""
    options = options or DemoOptions()
    get_encoding()  # load the tokenizer now rather than during the first request
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[OPTIONS_KEY] = options
    app[STATS_KEY] = DemoStats()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.router.add_post("/stats/reset", reset_stats)
    return app


# --- handlers -------------------------------------------------------------------------


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Answer a Chat Completions request, streaming or not, or with an OpenAI error."""
    counters = request.app[STATS_KEY]
    counters.requests += 1
    try:
        chat, prompt_tokens = await _accept_chat_request(request)
    except RequestError as exc:
        counters.errors += 1
        return _error_response(exc)
    choices = plan_choices(chat)
    if chat.stream:
        return await _stream_answer(request, chat, choices, prompt_tokens)
    return await _answer(request, chat, choices, prompt_tokens)


async def healthz(request: web.Request) -> web.Response:
    """Liveness probe: always 200 "ok"."""
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    """Return the app's DemoStats counters as JSON."""
    return _json_response(orjson.dumps(request.app[STATS_KEY].as_dict()))


async def reset_stats(request: web.Request) -> web.Response:
    """Zero the counters and return them."""
    counters = request.app[STATS_KEY]
    counters.reset()
    return _json_response(orjson.dumps(counters.as_dict()))


async def models(request: web.Request) -> web.Response:
    """List the demo model ids in OpenAI's list shape (body precomputed at import)."""
    try:
        _check_api_key(request, request.app[OPTIONS_KEY])
    except RequestError as exc:
        return _error_response(exc)
    return _json_response(_MODELS_BODY)


# --- chat completion steps -------------------------------------------------------------


async def _accept_chat_request(request: web.Request) -> tuple[ChatRequest, int]:
    """Authenticate, parse and check a chat request; return it with its prompt tokens.

    Raises RequestError for every refusal, including a configured ``fail_status`` (sent
    after ``latency_ms``, like a slow broken upstream).
    """
    options = request.app[OPTIONS_KEY]
    _check_api_key(request, options)
    body = load_body(await request.read())
    options = apply_overrides(body, options)
    if options.fail_status is not None:
        await _sleep_ms(options.latency_ms)
        raise _simulated_failure(options.fail_status)
    chat = parse_chat_request(body, options)
    prompt_tokens = count_prompt_tokens(chat.messages)
    if prompt_tokens > options.context_window:
        raise RequestError(
            400,
            f"This model's maximum context length is {options.context_window} tokens. "
            f"However, your messages resulted in {prompt_tokens} tokens. "
            "Please reduce the length of the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    return chat, prompt_tokens


async def _answer(
    request: web.Request, chat: ChatRequest, choices: list[Choice], prompt_tokens: int
) -> web.Response:
    """Send a ``chat.completion`` after the time streaming it would have taken."""
    longest = max(len(choice.pieces) for choice in choices)
    delay_ms = chat.options.latency_ms + max(0, longest - 1) * chat.options.inter_token_ms
    await _sleep_ms(delay_ms)
    usage = usage_of(prompt_tokens, choices)
    _record_completion(request.app[STATS_KEY], usage)
    body = completion_body(_completion_id(), int(time.time()), chat.model, choices, usage)
    return _json_response(body)


async def _stream_answer(
    request: web.Request, chat: ChatRequest, choices: list[Choice], prompt_tokens: int
) -> web.StreamResponse:
    """Stream the choices as server-sent events, pacing tokens by ``inter_token_ms``.

    A client that goes away ends the stream quietly and counts in ``streams_cancelled``.
    """
    counters = request.app[STATS_KEY]
    counters.streams_started += 1
    response = web.StreamResponse(headers=SSE_HEADERS)
    try:
        await _sleep_ms(chat.options.latency_ms)
        await response.prepare(request)
        await _write_events(response, chat, choices, prompt_tokens)
    except ConnectionError:  # the client left while we were writing
        counters.streams_cancelled += 1
        return response
    except asyncio.CancelledError:  # the client left while we were waiting
        counters.streams_cancelled += 1
        raise
    _record_completion(counters, usage_of(prompt_tokens, choices))
    return response


async def _write_events(
    response: web.StreamResponse, chat: ChatRequest, choices: list[Choice], prompt_tokens: int
) -> None:
    """Write every choice's events (interleaved by step), the usage chunk and [DONE]."""
    encoder = ChunkEncoder(_completion_id(), int(time.time()), chat.model, chat.include_usage)
    steps = [choice_steps(encoder, choice) for choice in choices]
    pause = chat.options.inter_token_ms / 1000
    for number, group in enumerate(itertools.zip_longest(*steps, fillvalue=b"")):
        if number and pause:
            await asyncio.sleep(pause)
        await response.write(b"".join(group))
    tail = DONE_EVENT
    if chat.include_usage:
        tail = encoder.usage(usage_of(prompt_tokens, choices)) + DONE_EVENT
    await response.write(tail)
    await response.write_eof()


def _record_completion(counters: DemoStats, usage: dict[str, int]) -> None:
    counters.completions += 1
    counters.prompt_tokens += usage["prompt_tokens"]
    counters.completion_tokens += usage["completion_tokens"]


# --- helpers ---------------------------------------------------------------------------


def _check_api_key(request: web.Request, options: DemoOptions) -> None:
    """Raise RequestError 401 unless the request carries the configured bearer key."""
    if options.api_key is None:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), options.api_key.encode()
    ):
        raise RequestError(
            401, "Incorrect API key provided.", code="invalid_api_key", error_type=ERROR_TYPES[401]
        )


def _simulated_failure(status: int) -> RequestError:
    """Return the OpenAI-shaped error a broken upstream answering ``status`` sends."""
    error_type = ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    return RequestError(
        status,
        f"The demo upstream is configured to fail with status {status}.",
        code="demo_failure",
        error_type=error_type,
    )


def _error_response(error: RequestError) -> web.Response:
    return web.Response(
        status=error.status, body=orjson.dumps(error.body()), content_type="application/json"
    )


def _json_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _completion_id() -> str:
    return "chatcmpl-" + os.urandom(16).hex()


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)


# --- running ---------------------------------------------------------------------------


async def start_demo_upstream(
    options: DemoOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    access_log: bool = False,
    shutdown_timeout: float = 2.0,
) -> tuple[web.AppRunner, str]:
    """Serve the demo upstream on ``host:port`` (0 picks a free port) in the running loop.

    Returns the runner (``await runner.cleanup()`` stops the server) and the server's root
    URL such as ``http://127.0.0.1:41234``; the OpenAI base URL is that plus ``/v1``.
    Handlers are cancelled when their client disconnects. The access log is off unless
    ``access_log`` (it costs CPU per request in benchmarks). ``shutdown_timeout`` bounds
    how long cleanup waits for in-flight requests.
    """
    runner = web.AppRunner(
        build_app(options),
        handler_cancellation=True,
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{url_host}:{bound_port}"


class DemoUpstreamThread:
    """The demo upstream on its own event loop in a daemon thread, for synchronous code.

    Usage::

        with DemoUpstreamThread(DemoOptions(completion_tokens=8)) as upstream:
            client = openai.OpenAI(base_url=upstream.base_url, api_key="x")
            ...
            assert upstream.stats()["requests"] == 1

    ``port=0`` (the default) binds a free loopback port, so parallel tests never clash.
    ``start()`` returns once the server accepts connections (or raises RuntimeError from
    what prevented that); ``stop()`` shuts it down, giving in-flight requests
    ``shutdown_timeout`` seconds before cancelling them, and joins the thread. Both are
    idempotent; an instance serves once and cannot be restarted after ``stop()``.
    """

    def __init__(
        self,
        options: DemoOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        shutdown_timeout: float = 0.5,
    ) -> None:
        self.options = options or DemoOptions()
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._app: web.Application | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-upstream", daemon=True)

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            raise RuntimeError("the demo upstream is not running")
        return self._url

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. ``http://127.0.0.1:41234/v1``."""
        return self.url + "/v1"

    def start(self, timeout: float = 30.0) -> Self:
        """Start the server thread and wait until it listens; raise if it could not."""
        if not self._thread.is_alive() and self._url is None:
            self._thread.start()
            if not self._ready.wait(timeout):
                raise TimeoutError("the demo upstream did not start in time")
            if self._startup_error is not None:
                raise RuntimeError("the demo upstream failed to start") from self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (in-flight requests get ``shutdown_timeout``) and join the thread."""
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop_event.set)
            self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        """Return a snapshot of the server's DemoStats counters."""
        return self._call_in_loop(lambda app: app[STATS_KEY].as_dict())

    def reset_stats(self) -> None:
        """Zero the server's counters."""
        self._call_in_loop(lambda app: app[STATS_KEY].reset())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _call_in_loop(self, function: Callable[[web.Application], Any]) -> Any:
        """Run ``function(app)`` on the server's loop thread and return its result."""
        loop, app = self._loop, self._app
        if loop is None or app is None or not self._thread.is_alive():
            raise RuntimeError("the demo upstream is not running")
        result: Future[Any] = Future()

        def call() -> None:
            try:
                result.set_result(function(app))
            except Exception as exc:  # handed to the calling thread
                result.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return result.result(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:
            if self._ready.is_set():
                logger.exception("the demo upstream stopped on an error")
            self._startup_error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        runner, url = await start_demo_upstream(
            self.options, self.host, self.port, shutdown_timeout=self.shutdown_timeout
        )
        try:
            self._app = runner.app
            self._loop = asyncio.get_running_loop()
            self._url = url
            self._ready.set()
            await self._stop_event.wait()
        finally:
            await runner.cleanup()
