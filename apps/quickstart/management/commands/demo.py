"""``manage.py demo``: the whole platform on one machine, needing only Python.

It runs an embedded Redis-compatible store (fakeredis, in a thread of this process), the demo
upstream LLM, migrations, the demo catalog and accounts on SQLite, then the gateway (uvicorn)
and a Celery worker with beat, all as child processes with a demo environment computed here.
It prints how to call the API, then supervises until Ctrl-C or SIGTERM, and stops everything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.quickstart.banner import DemoAccess, banner_lines
from apps.quickstart.catalog import write_demo_catalog
from apps.quickstart.environment import DemoPaths, demo_environment, load_or_create_secrets
from apps.quickstart.network import HOST, NotReady, port_is_free, wait_for_200
from apps.quickstart.processes import Interrupted, StepFailed, Supervisor
from apps.quickstart.store import EmbeddedStore, check_store

ADMIN_EMAIL = "admin@example.com"
INTER_TOKEN_MS = 25
SUPERVISE_EVERY_S = 0.5


class Command(BaseCommand):
    help = (
        "Start Tollgate with embedded defaults (SQLite, an in-process Redis-compatible store, "
        "the demo upstream, the gateway and a Celery worker) and keep it running until Ctrl-C."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False
    stop_requested: threading.Event  # set by SIGINT/SIGTERM
    supervisor: Supervisor | None  # the started processes, once there are any

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="gateway port (8000)")
        parser.add_argument("--upstream-port", type=int, default=9100, help="demo LLM (9100)")
        parser.add_argument(
            "--store-port", type=int, default=0, help="embedded Redis port (0: any free port)"
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=Path(settings.BASE_DIR) / "var" / "demo",
            help="database, secrets and logs (var/demo)",
        )
        parser.add_argument(
            "--ready-timeout", type=float, default=60.0, help="seconds to wait for start-up"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._check_ports(options["port"], options["upstream_port"], options["store_port"])
        self.stop_requested = threading.Event()
        self._install_signal_handlers()
        paths = DemoPaths(options["data_dir"].resolve())
        paths.create()
        store = EmbeddedStore(HOST, options["store_port"])
        self.supervisor = None
        try:
            self._supervise(self._start(paths, store, options))
        except Interrupted:
            raise CommandError("Interrupted during start-up.", returncode=130) from None
        except (StepFailed, NotReady) as error:
            raise CommandError(f"{error}\nLogs: {paths.logs}") from None
        finally:
            self._shut_down(self.supervisor, store)

    # --- start-up ---------------------------------------------------------------------------

    def _check_ports(self, port: int, upstream_port: int, store_port: int) -> None:
        """Refuse, before starting anything, ports that are equal or already taken."""
        wanted = {"--port": port, "--upstream-port": upstream_port}
        if store_port:
            wanted["--store-port"] = store_port
        if len(set(wanted.values())) != len(wanted):
            raise CommandError(f"The ports must differ: {wanted}.")
        for flag, number in wanted.items():
            if not 0 < number < 65536:
                raise CommandError(f"{flag} {number} is not a TCP port.")
            if not port_is_free(number):
                raise CommandError(
                    f"Port {number} ({flag}) is already in use on {HOST}. Stop what uses it "
                    f"or choose another, e.g. `manage.py demo {flag} {number + 1}`."
                )

    def _install_signal_handlers(self) -> None:
        """Ctrl-C and SIGTERM ask for a clean stop instead of killing the demo mid-way."""

        def request_stop(signum: int, frame: object) -> None:
            self.stop_requested.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def _start(self, paths: DemoPaths, store: EmbeddedStore, options: dict[str, Any]) -> Supervisor:
        """Run every start-up step and announce the demo; the supervisor of its services."""
        port, upstream_port = options["port"], options["upstream_port"]
        secret_values = load_or_create_secrets(paths.secrets)
        self._say(f"Data directory: {paths.root}")
        self._start_store(store)
        env = demo_environment(
            os.environ,
            paths=paths,
            store_url=store.url,
            public_url=f"http://{HOST}:{port}",
            secret_values=secret_values,
        )
        supervisor = Supervisor(env, Path(settings.BASE_DIR), paths.logs, self.stop_requested)
        self.supervisor = supervisor  # stopped by handle() however start-up ends
        self._say(f"Starting the demo upstream on http://{HOST}:{upstream_port}/v1")
        supervisor.start("upstream", _upstream_argv(upstream_port))
        self._prepare_database(supervisor, paths, upstream_port)
        seeded = self._seed(supervisor, secret_values["DEMO_ADMIN_PASSWORD"])
        self._say(f"Starting the gateway on http://{HOST}:{port} and the Celery worker with beat")
        supervisor.start("gateway", _gateway_argv(port))
        supervisor.start("worker", _worker_argv(paths))
        self._wait_until_ready(supervisor, port, upstream_port, options["ready_timeout"])
        self._announce(
            DemoAccess(
                root_url=f"http://{HOST}:{port}",
                api_key=seeded["api_key"],
                admin_email=seeded["admin_email"],
                admin_password=secret_values["DEMO_ADMIN_PASSWORD"],
                secrets_path=paths.secrets,
                logs_path=paths.logs,
                store_url=store.url,
                upstream_url=f"http://{HOST}:{upstream_port}/v1",
            )
        )
        return supervisor

    def _announce(self, access: DemoAccess) -> None:
        """Print URLs, logins and examples; the last line is the one scripts wait for."""
        for line in banner_lines(access):
            self._say(line)

    def _start_store(self, store: EmbeddedStore) -> None:
        """Start the embedded store and check it runs what the gateway needs (Lua above all)."""
        try:
            store.start()
        except OSError as error:
            raise CommandError(f"Cannot start the embedded store on {HOST}: {error}") from None
        try:
            check_store(store.url)
        except redis.RedisError as error:
            raise CommandError(
                f"The embedded store failed its self-check ({type(error).__name__}: {error}). "
                "It needs fakeredis[lua] (lupa) for Lua scripts."
            ) from None
        self._say(f"Embedded Redis-compatible store (fakeredis) listening on {store.url}")

    def _prepare_database(
        self, supervisor: Supervisor, paths: DemoPaths, upstream_port: int
    ) -> None:
        """WAL mode (readers never block the writer), migrations, then the demo catalog."""
        with contextlib.closing(sqlite3.connect(paths.database)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        self._say(f"Applying migrations to {paths.database}")
        supervisor.run_step(_manage("migrate", "--no-input", "-v", "0"))
        catalog = write_demo_catalog(paths.catalog, upstream_port)
        output = supervisor.run_step(_manage("sync_catalog", str(catalog)))
        self._say(f"Catalog {catalog.name}: {output.strip().splitlines()[-1]}")

    def _seed(self, supervisor: Supervisor, admin_password: str) -> dict[str, str]:
        """Run demo_seed and parse its ``name=value`` lines."""
        output = supervisor.run_step(
            _manage("demo_seed", "--admin-email", ADMIN_EMAIL),
            extra_env={"DEMO_ADMIN_PASSWORD": admin_password},
        )
        values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
        if "api_key" not in values:
            raise CommandError(f"demo_seed printed no API key:\n{output}")
        self._say(
            f"Seeded: admin {values['admin']}, Demo Org {values['organization']}, "
            f"credits {values['credits']}, new API key {values['api_key_prefix']}…"
        )
        return values

    def _wait_until_ready(
        self, supervisor: Supervisor, port: int, upstream_port: int, timeout: float
    ) -> None:
        """Wait for the upstream's /healthz and the gateway's /readyz (database and store)."""

        def check() -> None:
            self._raise_if_a_service_died(supervisor)

        deadline = time.monotonic() + timeout
        for url in (f"http://{HOST}:{upstream_port}/healthz", f"http://{HOST}:{port}/readyz"):
            left = max(0.0, deadline - time.monotonic())
            wait_for_200(url, timeout=left, stop=self.stop_requested, check=check)
        if self.stop_requested.is_set():
            raise Interrupted("start-up")

    # --- running and stopping ---------------------------------------------------------------

    def _supervise(self, supervisor: Supervisor) -> None:
        """Return once a stop is requested; raise CommandError if a service dies first."""
        while not self.stop_requested.wait(SUPERVISE_EVERY_S):
            self._raise_if_a_service_died(supervisor)
        self._say("Stopping…")

    def _raise_if_a_service_died(self, supervisor: Supervisor) -> None:
        dead = supervisor.first_dead()
        if dead is not None:
            raise CommandError(
                f"The {dead.name} process exited unexpectedly with status "
                f"{dead.process.returncode}. End of {dead.log_path}:\n{dead.log_tail()}"
            )

    def _shut_down(self, supervisor: Supervisor | None, store: EmbeddedStore) -> None:
        """Stop every child (they still reach the store meanwhile), then the store."""
        if supervisor is not None:
            supervisor.stop_all()
        store.stop()
        self._say("Every demo process is stopped.")

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]


def _upstream_argv(port: int) -> list[str]:
    return _manage(
        "run_demo_upstream", "--port", str(port), "--inter-token-ms", str(INTER_TOKEN_MS)
    )


def _gateway_argv(port: int) -> list[str]:
    """One uvicorn process: enough for a demo, and SQLite prefers few writers."""
    return [
        sys.executable, "-m", "uvicorn", "config.asgi:application",
        "--host", HOST, "--port", str(port),
        "--lifespan", "on", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip


def _worker_argv(paths: DemoPaths) -> list[str]:
    """Celery worker with embedded beat. Gossip, mingle and heartbeats only matter between
    several workers; without them the embedded store serves less pub/sub traffic."""
    return [
        sys.executable, "-m", "celery", "-A", "config.celery:app",
        "worker", "-B", "--pool=solo", "--loglevel=WARNING",
        "--schedule", str(paths.beat_schedule), "--hostname", "demo@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
