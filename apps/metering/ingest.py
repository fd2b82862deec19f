"""The usage ingest pipeline: Redis stream -> PostgreSQL usage rows and ledger debits.

The gateway XADDs one entry per finished request to keyspace.USAGE_STREAM. Ingest workers
read it through the consumer group keyspace.USAGE_GROUP, store each batch in ONE transaction
(usage rows plus their usage ledger entries and the per-organization balance updates) and only
after the commit XACK and XDEL the entries. Every step is idempotent by request id (a unique
usage row, a unique ledger key "usage:<request id>"), so an entry delivered twice — a worker
that died after its commit and before its ack — is never charged twice.

A worker that dies leaves its entries pending in the group; the next run claims those idle for
longer than `claim_idle_ms` (XAUTOCLAIM) before reading new ones. An entry that cannot be
parsed or stored is copied to DEAD_LETTER_STREAM and acknowledged, so it never blocks the rest.
"""

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis
from django.db import DataError, IntegrityError, transaction

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.ledger.bulk_insert import insert_new_rows
from apps.ledger.money import exact_usd
from apps.ledger.services import UsageDebit, post_usage_debits
from apps.metering.events import UsageEvent
from apps.metering.models import Status, UsageRecord
from apps.tenants.models import Organization

log = logging.getLogger(__name__)

DEAD_LETTER_STREAM = "{tollgate}:usage:dead"
"""Entries ingest could not parse or store, with `_error` and `_source_id` fields added."""

FORGET_CONSUMERS_IDLE_MS = 24 * 3600 * 1000  # drop group members without work after a day
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUSES = frozenset(Status.values)
MONEY_FIELDS = ("input_price_per_mtok", "output_price_per_mtok", "cost")
MAX_UNIX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last datetime Python has

Entry = tuple[bytes, dict[bytes, bytes]]


class MalformedEvent(ValueError):
    """A stream entry that is not a valid usage event."""


def ingest_pending(
    *,
    consumer: str,
    batch_size: int = 1000,
    max_batches: int | None = None,
    claim_idle_ms: int = 60000,
    time_budget_s: float | None = None,
) -> int:
    """Ingest usage events until the stream has nothing left for this consumer, `max_batches`
    batches were read or `time_budget_s` seconds passed (the batch in hand is finished).
    First claims entries another consumer left pending for more than `claim_idle_ms` ms,
    then reads new ones. A reader thread fetches and parses the next batch while this one is
    written to PostgreSQL.

    Returns the number of stream entries handled (stored, found already stored, or
    dead-lettered). Raises on database or Redis outages, leaving the current batch pending."""
    client = sync_redis()
    ensure_consumer_group(client)
    reader = _StreamReader(client, consumer, batch_size, claim_idle_ms)
    writer = _BatchWriter(client)
    handled = 0
    for batch in _read_ahead(reader.batches(_Budget(max_batches, time_budget_s))):
        handled += writer.write(batch)
    forget_idle_consumers(client)
    return handled


def default_consumer_name() -> str:
    """This process's name in the consumer group: host and pid, unique while it lives."""
    return f"{socket.gethostname()}-{os.getpid()}"


def ensure_consumer_group(client: redis.Redis) -> None:
    """Create the group (and the stream) if missing; it reads from the stream's beginning."""
    try:
        client.xgroup_create(keyspace.USAGE_STREAM, keyspace.USAGE_GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def forget_idle_consumers(client: redis.Redis) -> None:
    """Remove group members that own no pending entries and have been idle for a day, so
    short-lived worker names (host-pid) do not pile up. A returning worker is re-added."""
    for member in client.xinfo_consumers(keyspace.USAGE_STREAM, keyspace.USAGE_GROUP):
        if member["pending"] == 0 and member["idle"] > FORGET_CONSUMERS_IDLE_MS:
            client.xgroup_delconsumer(keyspace.USAGE_STREAM, keyspace.USAGE_GROUP, member["name"])


def parse_entry(fields: dict[bytes, bytes]) -> UsageEvent:
    """A stream entry as a validated UsageEvent; raises MalformedEvent."""
    try:
        event = UsageEvent.from_fields(fields)
        _validate(event)
    except (KeyError, ValueError, ArithmeticError, TypeError) as error:
        raise MalformedEvent(f"{type(error).__name__}: {error}") from error
    return event


def ms_to_datetime(unix_ms: int) -> datetime:
    """Unix milliseconds as an aware UTC datetime, exactly (no float)."""
    return EPOCH + timedelta(milliseconds=unix_ms)


def _validate(event: UsageEvent) -> None:
    """Raise ValueError (InexactAmount for money) for an event PostgreSQL would refuse or
    store differently from what the gateway charged."""
    for holds, problem in EVENT_CHECKS:
        if not holds(event):
            raise ValueError(problem)


def _is_usd_not_negative(value: Decimal) -> bool:
    return exact_usd(value) >= 0  # raises InexactAmount if not exact to 1e-10


EVENT_CHECKS: tuple[tuple[Callable[[UsageEvent], bool], str], ...] = (
    (lambda e: 0 < len(e.request_id) <= 100, "request_id must be 1 to 100 characters"),
    (lambda e: 0 < len(e.model) <= 128, "model must be 1 to 128 characters"),
    (lambda e: e.status in STATUSES, f"status must be one of {sorted(STATUSES)}"),
    (lambda e: 0 < e.org_id <= INT64_MAX and 0 < e.key_id <= INT64_MAX, "bad org_id or key_id"),
    (lambda e: 0 <= e.deployment_id <= INT64_MAX, "deployment_id out of range"),
    (
        lambda e: 0 <= e.prompt_tokens <= INT32_MAX and 0 <= e.completion_tokens <= INT32_MAX,
        "token count out of range",
    ),
    (
        lambda e: all(_is_usd_not_negative(getattr(e, name)) for name in MONEY_FIELDS),
        "prices and cost must not be negative",
    ),
    (
        lambda e: 0 <= e.started_at_ms <= MAX_UNIX_MS and 0 <= e.finished_at_ms <= MAX_UNIX_MS,
        "time out of range",
    ),
    (lambda e: abs(e.latency_ms) <= INT32_MAX, "latency out of range"),
    (lambda e: e.ttft_ms is None or 0 <= e.ttft_ms <= INT32_MAX, "ttft_ms out of range"),
)


class _Budget:
    """How many batches and seconds one ingest run may use (None: unlimited)."""

    def __init__(self, max_batches: int | None, seconds: float | None) -> None:
        self.batches_left = max_batches
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def exhausted(self) -> bool:
        if self.batches_left is not None and self.batches_left <= 0:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def spend_batch(self) -> None:
        if self.batches_left is not None:
            self.batches_left -= 1


@dataclass(slots=True)
class _Batch:
    """Entries read together: the raw fields by entry id, the events that parsed, and the
    entries that did not (with the reason)."""

    raw: dict[bytes, dict[bytes, bytes]]
    events: list[tuple[bytes, UsageEvent]] = field(default_factory=list)
    malformed: list[tuple[bytes, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, entries: Sequence[Entry]) -> "_Batch":
        batch = cls(dict(entries))
        for entry_id, fields in entries:
            try:
                batch.events.append((entry_id, parse_entry(fields)))
            except MalformedEvent as error:
                batch.malformed.append((entry_id, str(error)))
        return batch


class _StreamReader:
    """Reads and parses batches for one consumer: other consumers' stale entries first."""

    def __init__(self, client: redis.Redis, consumer: str, batch_size: int, claim_idle_ms: int):
        self.client = client
        self.consumer = consumer
        self.batch_size = batch_size
        self.claim_idle_ms = claim_idle_ms

    def batches(self, budget: _Budget) -> Iterator[_Batch]:
        for entries in self._claimed(budget):
            budget.spend_batch()
            yield _Batch.parse(entries)
        while not budget.exhausted():
            entries = self._read_new()
            if not entries:
                return
            budget.spend_batch()
            yield _Batch.parse(entries)

    def _claimed(self, budget: _Budget) -> Iterator[list[Entry]]:
        """Entries other consumers left pending for longer than claim_idle_ms."""
        cursor: bytes | str = "0-0"
        while not budget.exhausted():
            cursor, entries, gone = self.client.xautoclaim(
                keyspace.USAGE_STREAM,
                keyspace.USAGE_GROUP,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=cursor,
                count=self.batch_size,
            )
            if gone:  # deleted from the stream while pending: nothing left to ingest
                log.error("Usage entries vanished before ingest: %s", gone)
                acknowledge(self.client, gone)
            live = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
            if live:
                yield live
            if cursor in (b"0-0", "0-0"):
                return

    def _read_new(self) -> list[Entry]:
        """Up to batch_size entries never delivered to any consumer of the group."""
        reply = self.client.xreadgroup(
            keyspace.USAGE_GROUP,
            self.consumer,
            {keyspace.USAGE_STREAM: ">"},
            count=self.batch_size,
        )
        return reply[0][1] if reply else []


def _read_ahead(batches: Iterator[_Batch]) -> Iterator[_Batch]:
    """Yield from `batches`, producing the next one in a thread while the caller works on
    this one (Redis reads and parsing overlap the PostgreSQL round trips)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-reader") as pool:
        upcoming = pool.submit(next, batches, None)
        while (batch := upcoming.result()) is not None:
            upcoming = pool.submit(next, batches, None)
            yield batch


class _BatchWriter:
    """Stores batches in PostgreSQL and acknowledges them; dead-letters what cannot be stored."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.known_orgs: set[int] = set()

    def write(self, batch: _Batch) -> int:
        """Store one batch in one transaction, then acknowledge it; the entries handled."""
        for entry_id, reason in batch.malformed:
            dead_letter(self.client, entry_id, batch.raw[entry_id], reason)
        events = self._drop_unknown_organizations(batch)
        try:
            store_events([event for _, event in events])
        except (IntegrityError, DataError):
            log.warning(
                "A usage batch failed to store; storing its %d events one by one",
                len(events),
                exc_info=True,
            )
            events = self._store_one_by_one(events, batch)
        acknowledge(self.client, [entry_id for entry_id, _ in events])
        return len(batch.raw)

    def _drop_unknown_organizations(self, batch: _Batch) -> list[tuple[bytes, UsageEvent]]:
        unseen = {event.org_id for _, event in batch.events} - self.known_orgs
        if unseen:
            self.known_orgs |= set(
                Organization.objects.filter(pk__in=unseen).values_list("pk", flat=True)
            )
        kept = []
        for entry_id, event in batch.events:
            if event.org_id in self.known_orgs:
                kept.append((entry_id, event))
            else:
                reason = f"unknown organization {event.org_id}"
                dead_letter(self.client, entry_id, batch.raw[entry_id], reason)
        return kept

    def _store_one_by_one(
        self, events: list[tuple[bytes, UsageEvent]], batch: _Batch
    ) -> list[tuple[bytes, UsageEvent]]:
        stored = []
        for entry_id, event in events:
            try:
                store_events([event])
            except (IntegrityError, DataError) as error:
                reason = f"{type(error).__name__}: {error}"
                dead_letter(self.client, entry_id, batch.raw[entry_id], reason)
            else:
                stored.append((entry_id, event))
        return stored


def dead_letter(
    client: redis.Redis, entry_id: bytes, fields: dict[bytes, bytes], reason: str
) -> None:
    """Copy the entry to the dead-letter stream and remove it from the group, atomically."""
    log.error("Dead-lettering usage entry %s: %s", entry_id, reason)
    copy = {**fields, b"_error": reason[:1000], b"_source_id": entry_id}
    with client.pipeline(transaction=True) as pipe:
        pipe.xadd(DEAD_LETTER_STREAM, copy)
        pipe.xack(keyspace.USAGE_STREAM, keyspace.USAGE_GROUP, entry_id)
        pipe.xdel(keyspace.USAGE_STREAM, entry_id)
        pipe.execute()


def acknowledge(client: redis.Redis, entry_ids: Sequence[bytes]) -> None:
    """XACK then XDEL, atomically: the stream keeps only entries not yet ingested."""
    if not entry_ids:
        return
    with client.pipeline(transaction=True) as pipe:
        pipe.xack(keyspace.USAGE_STREAM, keyspace.USAGE_GROUP, *entry_ids)
        pipe.xdel(keyspace.USAGE_STREAM, *entry_ids)
        pipe.execute()


def store_events(events: Sequence[UsageEvent]) -> int:
    """Store usage rows and their ledger debits in one transaction, skipping request ids
    already stored (the first of repeats within `events` wins). Returns how many were new."""
    unique: dict[str, UsageEvent] = {}
    for event in events:
        unique.setdefault(event.request_id, event)
    ordered = [unique[request_id] for request_id in sorted(unique)]  # one lock order for all
    with transaction.atomic():
        inserted = _insert_usage_rows(ordered)
        post_usage_debits(
            UsageDebit(event.org_id, event.request_id, event.cost, memo=event.model)
            for event in ordered
            if event.request_id in inserted and event.cost != 0
        )
    return len(inserted)


def _insert_usage_rows(events: Sequence[UsageEvent]) -> set[str]:
    """Insert the rows not stored yet; the request ids of the new ones."""
    columns = {
        "request_id": [event.request_id for event in events],
        "organization": [event.org_id for event in events],
        "key": [event.key_id for event in events],
        "model": [event.model for event in events],
        "deployment_id": [event.deployment_id for event in events],
        "prompt_tokens": [event.prompt_tokens for event in events],
        "completion_tokens": [event.completion_tokens for event in events],
        "input_price_per_mtok": [event.input_price_per_mtok for event in events],
        "output_price_per_mtok": [event.output_price_per_mtok for event in events],
        "cost": [event.cost for event in events],
        "status": [event.status for event in events],
        "stream": [event.stream for event in events],
        "started_at": [ms_to_datetime(event.started_at_ms) for event in events],
        "finished_at": [ms_to_datetime(event.finished_at_ms) for event in events],
        "latency_ms": [event.latency_ms for event in events],
        "ttft_ms": [event.ttft_ms for event in events],
    }
    return insert_new_rows(UsageRecord, columns, conflict_field="request_id")
