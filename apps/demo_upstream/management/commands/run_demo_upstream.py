"""``manage.py run_demo_upstream``: serve the OpenAI-compatible demo upstream until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.demo_upstream.server import DemoOptions, start_demo_upstream


class Command(BaseCommand):
    help = (
        "Run the deterministic OpenAI-compatible demo upstream (POST /v1/chat/completions, "
        "GET /v1/models, GET /healthz, GET /stats). Needs no database. Stops on SIGINT/SIGTERM."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the listening address and every DemoOptions setting."""
        parser.add_argument("--host", default="127.0.0.1", help="address to bind")
        parser.add_argument("--port", type=int, default=9100, help="port to bind (0: any free)")
        parser.add_argument("--latency-ms", type=int, default=0, help="delay before the first byte")
        pacing = parser.add_mutually_exclusive_group()
        pacing.add_argument(
            "--tokens-per-second", type=float, help="streaming speed (sets --inter-token-ms)"
        )
        pacing.add_argument(
            "--inter-token-ms", type=float, default=0.0, help="delay between streamed tokens"
        )
        parser.add_argument(
            "--completion-tokens", type=int, default=16, help="answer length unless max_tokens"
        )
        parser.add_argument(
            "--context-window", type=int, default=131072, help="largest accepted prompt"
        )
        parser.add_argument(
            "--fail-status", type=int, default=None, help="answer every chat request this status"
        )
        parser.add_argument("--api-key", default=None, help="require this bearer key on /v1")
        parser.add_argument(
            "--access-log", action="store_true", help="log every request (costs CPU)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build DemoOptions from the flags and serve until interrupted."""
        demo_options = demo_options_from(options)
        serve = _serve(
            demo_options,
            options["host"],
            options["port"],
            access_log=options["access_log"],
            on_ready=self._announce,
        )
        _run(serve)

    def _announce(self, url: str) -> None:
        """Write the one start-up line with the URL, flushed so a supervisor sees it now."""
        self.stdout.write(f"Demo upstream listening on {url} (OpenAI base URL {url}/v1)")
        self.stdout.flush()


def demo_options_from(options: dict[str, Any]) -> DemoOptions:
    """Return the DemoOptions the parsed command-line ``options`` describe."""
    inter_token_ms = options["inter_token_ms"]
    tokens_per_second = options.get("tokens_per_second")
    if tokens_per_second is not None:
        if tokens_per_second <= 0:
            raise CommandError("--tokens-per-second must be positive")
        inter_token_ms = 1000.0 / tokens_per_second
    try:
        return DemoOptions(
            latency_ms=options["latency_ms"],
            inter_token_ms=inter_token_ms,
            completion_tokens=options["completion_tokens"],
            context_window=options["context_window"],
            fail_status=options["fail_status"],
            api_key=options["api_key"],
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


async def _serve(
    options: DemoOptions,
    host: str,
    port: int,
    *,
    access_log: bool,
    on_ready: Callable[[str], None],
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # signal handlers need a Unix loop
            loop.add_signal_handler(signum, stop.set)
    runner, url = await start_demo_upstream(
        options, host, port, access_log=access_log, shutdown_timeout=5.0
    )
    try:
        on_ready(url)
        await stop.wait()
    finally:
        await runner.cleanup()


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on a uvloop event loop when uvloop is installed, else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)
