"""A Celery ingest worker killed with SIGKILL mid-batch loses and doubles nothing.

Real processes: two `celery worker --pool=solo` subprocesses on the test database and the test
Redis (also the broker). The first is killed while it ingests 10,000 events in small batches;
the second claims what the first left pending and finishes. Every event must then be in
PostgreSQL exactly once, with exactly one usage debit, and the ledger must reconcile.
"""

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.keys.services import create_api_key
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.money import usd_to_units
from apps.ledger.reconcile import reconcile_organization
from apps.ledger.selectors import cached_balance, ledger_balance
from apps.ledger.services import grant_credits
from apps.metering.models import UsageRecord
from apps.tenants.services import create_organization
from config.celery import app as celery_app
from tests.metering.usage_factory import publish, usage_event

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 10_000
START = Decimal("1000")


@contextmanager
def celery_worker(env: dict[str, str], queue: str, log_path: Path) -> Iterator[subprocess.Popen]:
    """`celery worker --pool=solo` consuming only `queue`; stopped (or killed) on exit."""
    command = [
        sys.executable, "-m", "celery", "-A", "config.celery:app", "worker",
        "--pool=solo", "-Q", queue, "-n", f"{queue}@%h", "--loglevel=WARNING",
        "--without-heartbeat", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, *logs: Path) -> None:
    """Poll `condition` until true; fail with the workers' logs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")
        time.sleep(0.02)


def send_ingest(queue: str, **options: object) -> None:
    celery_app.send_task("metering.ingest_usage", kwargs=options, queue=queue)


def pending_entries() -> int:
    """Entries delivered to a consumer of the group and not yet acknowledged."""
    return sync_redis().xpending(keyspace.USAGE_STREAM, keyspace.USAGE_GROUP)["pending"]


def stream_is_drained() -> bool:
    return sync_redis().xlen(keyspace.USAGE_STREAM) == 0 and pending_entries() == 0


def test_a_killed_worker_loses_and_doubles_nothing(live_server_env, tmp_path):
    organization = create_organization("Crashy", owner_email="ops@crashy.example")
    key, _ = create_api_key(organization)
    grant_credits(organization, START, reason="test credit")
    rng = random.Random(20261123)
    costs = [Decimal(rng.randint(1, 10**8)).scaleb(-10) for _ in range(EVENTS)]
    request_ids = [f"crash-{n:05d}" for n in range(EVENTS)]
    total = sum(costs, Decimal(0))
    # The gateway debited its counter for every request before handing over the events.
    sync_redis().set(keyspace.credit_available(organization.pk), usd_to_units(START - total))
    publish(
        usage_event(organization.pk, key.pk, request_id, cost=cost)
        for request_id, cost in zip(request_ids, costs, strict=True)
    )
    env = {**live_server_env, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    run = uuid.uuid4().hex[:8]
    first_queue, second_queue = f"crash-a-{run}", f"crash-b-{run}"
    first_log, second_log = tmp_path / "worker-a.log", tmp_path / "worker-b.log"

    with celery_worker(env, first_queue, first_log) as first:
        # Small batches make the run long enough to be caught in the middle.
        send_ingest(first_queue, batch_size=10, time_budget_s=300)
        wait_for(
            lambda: UsageRecord.objects.count() >= 1000 and pending_entries() > 0,
            120,
            "the first worker",
            first_log,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    stored_by_first, left_pending = UsageRecord.objects.count(), pending_entries()
    assert 1000 <= stored_by_first < EVENTS, (stored_by_first, left_pending)
    assert not stream_is_drained()

    with celery_worker(env, second_queue, second_log):
        deadline_for_next_send = 0.0

        def finished() -> bool:
            nonlocal deadline_for_next_send
            if time.monotonic() >= deadline_for_next_send:  # what beat would do
                send_ingest(second_queue, claim_idle_ms=500, time_budget_s=5)
                deadline_for_next_send = time.monotonic() + 1.0
            return UsageRecord.objects.count() == EVENTS and stream_is_drained()

        wait_for(finished, 120, "the second worker", first_log, second_log)

    rows = UsageRecord.objects.filter(organization=organization)
    assert rows.count() == EVENTS
    assert sorted(rows.values_list("request_id", flat=True)) == request_ids
    usage = LedgerEntry.objects.filter(organization=organization, kind=EntryKind.USAGE)
    assert usage.count() == EVENTS
    assert sorted(usage.values_list("idempotency_key", flat=True)) == [
        f"usage:{request_id}" for request_id in request_ids
    ]
    assert ledger_balance(organization) == START - total
    assert cached_balance(organization) == START - total
    assert reconcile_organization(organization, recheck_delay_s=0) == []
