"""How many usage events per second one ingest worker moves from Redis into PostgreSQL.

    uv run python -m bench.bench_ingest [--events 50000] [--batch-size 1000]

Uses its own PostgreSQL database (`tollgate_ingest_bench`, created and migrated if missing) and
Redis db 12, so it never disturbs the gateway bench or the tests. XADDs N usage events of one
organization first, then times `ingest_pending` draining them in this single process, and
checks that every event became exactly one row and one ledger debit.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid
from decimal import Decimal
from pathlib import Path

from bench.setup_bench import ensure_database

DATABASE_NAME = "tollgate_ingest_bench"
ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench",
    "API_KEY_HMAC_SECRET": "bench",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}",
    "REDIS_URL": "redis://127.0.0.1:6379/12",
    "REDIS_TIMEOUT_S": "5",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}
COST = Decimal("0.0000180000")  # 100 prompt + 20 completion tokens at 0.1 / 0.4 USD per Mtok
STARTED_AT_MS = 1_790_000_000_000


def setup() -> None:
    os.environ.update(ENV)
    ensure_database(DATABASE_NAME)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def publish(count: int, run: str) -> float:
    """XADD `count` events; seconds taken."""
    from apps.hotstate import keyspace
    from apps.hotstate.clients import sync_redis
    from apps.keys.models import APIKey
    from apps.keys.services import create_api_key
    from apps.metering.events import UsageEvent, UsageStatus
    from apps.metering.ingest import DEAD_LETTER_STREAM
    from apps.tenants.models import Organization

    organization = Organization.objects.filter(name="IngestBench").first()
    if organization is None:
        from apps.tenants.services import create_organization

        organization = create_organization("IngestBench", owner_email="bench@example.com")
    key = APIKey.objects.filter(organization=organization).first()
    if key is None:
        key, _ = create_api_key(organization)
    client = sync_redis()
    client.delete(keyspace.USAGE_STREAM, DEAD_LETTER_STREAM)
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        event = UsageEvent(
            request_id=f"{run}-{n}",
            org_id=organization.pk,
            key_id=key.pk,
            model="default",
            deployment_id=1,
            prompt_tokens=100,
            completion_tokens=20,
            input_price_per_mtok=Decimal("0.1"),
            output_price_per_mtok=Decimal("0.4"),
            cost=COST,
            status=UsageStatus.OK,
            stream=False,
            started_at_ms=STARTED_AT_MS + n,
            finished_at_ms=STARTED_AT_MS + n + 850,
            ttft_ms=None,
        )
        pipe.xadd(keyspace.USAGE_STREAM, event.to_fields())
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def ingest(batch_size: int) -> dict[str, float]:
    """Drain the stream in this process: entries handled, wall seconds, and the CPU seconds
    spent by this process (all threads) and by its PostgreSQL backend."""
    from django.db import connection

    from apps.metering.ingest import ingest_pending

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    worker_cpu, backend_cpu = cpu_seconds(os.getpid()), cpu_seconds(backend)
    started = time.perf_counter()
    handled = ingest_pending(consumer="bench", batch_size=batch_size)
    return {
        "events": handled,
        "wall_s": time.perf_counter() - started,
        "worker_cpu_s": cpu_seconds(os.getpid()) - worker_cpu,
        "postgres_cpu_s": cpu_seconds(backend) - backend_cpu,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_pressure() -> str:
    """The share of time runnable tasks waited for a CPU (PSI, last 60 s), if available."""
    try:
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0]
    except OSError:
        return "n/a"
    return some.split()[2].removeprefix("avg60=") + "%"


def verify(run: str, count: int) -> None:
    from apps.ledger.models import LedgerEntry
    from apps.metering.models import UsageRecord

    rows = UsageRecord.objects.filter(request_id__startswith=f"{run}-").count()
    debits = LedgerEntry.objects.filter(idempotency_key__startswith=f"usage:{run}-")
    if rows != count or debits.count() != count:
        raise SystemExit(f"expected {count} rows and debits, got {rows} and {debits.count()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    setup()
    print(f"{os.cpu_count()} CPUs ({platform.machine()}), load average {os.getloadavg()[0]:.2f}")
    rates = []
    for round_number in range(1, options.rounds + 1):
        run = uuid.uuid4().hex[:12]
        publish_s = publish(options.events, run)
        result = ingest(options.batch_size)
        verify(run, options.events)
        rate = result["events"] / result["wall_s"]
        rates.append(rate)
        print(
            f"round {round_number}: published {options.events} in {publish_s:.2f}s; "
            f"ingested {result['events']:.0f} in {result['wall_s']:.2f}s = {rate:,.0f} events/s; "
            f"CPU per event: worker {result['worker_cpu_s'] / result['events'] * 1e6:.0f} us, "
            f"PostgreSQL {result['postgres_cpu_s'] / result['events'] * 1e6:.0f} us; "
            f"CPU pressure {cpu_pressure()}, load {os.getloadavg()[0]:.2f}"
        )
    print(
        f"batch size {options.batch_size}: median {statistics.median(rates):,.0f} events/s, "
        f"best {max(rates):,.0f} events/s (one ingest process)"
    )


if __name__ == "__main__":
    main()
