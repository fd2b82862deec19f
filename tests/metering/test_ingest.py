"""The usage stream reaches PostgreSQL exactly once: rows, usage debits and balances."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.keys.services import create_api_key
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.selectors import cached_balance, ledger_balance
from apps.ledger.services import grant_credits
from apps.metering.ingest import (
    DEAD_LETTER_STREAM,
    ensure_consumer_group,
    ingest_pending,
    store_events,
)
from apps.metering.models import UsageRecord
from apps.metering.tasks import ingest_usage
from apps.tenants.services import create_organization
from tests.metering.usage_factory import publish, publish_raw, usage_event

pytestmark = pytest.mark.django_db

START = Decimal("10.0000000000")


@pytest.fixture
def acme():
    organization = create_organization("Acme", owner_email="ops@acme.example")
    key, _ = create_api_key(organization)
    grant_credits(organization, START, reason="test credit", idempotency_key="acme-start")
    return organization, key


def stream_length() -> int:
    return sync_redis().xlen(keyspace.USAGE_STREAM)


def pending_count() -> int:
    return sync_redis().xpending(keyspace.USAGE_STREAM, keyspace.USAGE_GROUP)["pending"]


def test_each_request_is_stored_and_charged_once(acme):
    organization, key = acme
    first = usage_event(organization.pk, key.pk, "req-1", cost=Decimal("0.0012345678"))
    second = usage_event(organization.pk, key.pk, "req-2", cost=Decimal("0.5000000001"))
    publish([first, first, second])

    assert ingest_pending(consumer="worker-a") == 3
    publish([second])
    assert ingest_pending(consumer="worker-a") == 1

    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["req-1", "req-2"]
    usage = LedgerEntry.objects.filter(kind=EntryKind.USAGE).order_by("idempotency_key")
    assert [(entry.idempotency_key, entry.amount) for entry in usage] == [
        ("usage:req-1", Decimal("-0.0012345678")),
        ("usage:req-2", Decimal("-0.5000000001")),
    ]
    assert ledger_balance(organization) == Decimal("9.4987654321")
    assert cached_balance(organization) == Decimal("9.4987654321")
    assert (stream_length(), pending_count()) == (0, 0)


def test_usage_row_keeps_the_event_exactly(acme):
    organization, key = acme
    publish([usage_event(organization.pk, key.pk, "req-exact", cost=Decimal("0.0000000001"))])

    ingest_pending(consumer="worker-a")

    row = UsageRecord.objects.get()
    assert (row.organization_id, row.key_id, row.model, row.deployment_id) == (
        organization.pk,
        key.pk,
        "default",
        7,
    )
    assert (row.prompt_tokens, row.completion_tokens, row.latency_ms, row.ttft_ms) == (
        100,
        20,
        1234,
        56,
    )
    assert (row.input_price_per_mtok, row.output_price_per_mtok, row.cost) == (
        Decimal("0.1000000000"),
        Decimal("0.4000000000"),
        Decimal("0.0000000001"),
    )
    assert (row.status, row.stream) == ("ok", True)
    assert row.started_at == datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)
    assert row.finished_at - row.started_at == timedelta(milliseconds=1234)


def test_free_request_is_stored_without_a_ledger_entry(acme):
    organization, key = acme
    publish([usage_event(organization.pk, key.pk, "req-free", cost=Decimal(0))])

    ingest_pending(consumer="worker-a")

    assert UsageRecord.objects.filter(request_id="req-free").count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.USAGE).count() == 0
    assert ledger_balance(organization) == START


def test_malformed_entries_are_dead_lettered_without_blocking_the_rest(acme):
    organization, key = acme
    good = usage_event(organization.pk, key.pk, "req-good-1")
    missing_cost = {k: v for k, v in good.to_fields().items() if k != "cost"}
    publish([good])
    publish_raw({**missing_cost, "request_id": "req-missing-cost"})
    publish_raw({**good.to_fields(), "request_id": "req-nan", "cost": "NaN"})
    publish_raw({**good.to_fields(), "request_id": "req-too-precise", "cost": "0.00000000001"})
    publish_raw({**good.to_fields(), "request_id": "req-negative", "cost": "-1"})
    publish_raw({**good.to_fields(), "request_id": "req-bad-status", "status": "maybe"})
    publish_raw({**good.to_fields(), "request_id": "req-no-org", "org_id": "999999"})
    publish_raw({"garbage": "\xff"})
    publish([usage_event(organization.pk, key.pk, "req-good-2")])

    assert ingest_pending(consumer="worker-a", batch_size=3) == 9

    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == [
        "req-good-1",
        "req-good-2",
    ]
    assert ledger_balance(organization) == START - 2 * Decimal("0.0000123400")
    dead = sync_redis().xrange(DEAD_LETTER_STREAM)
    assert sorted(fields.get(b"request_id", b"") for _, fields in dead) == [
        b"",
        b"req-bad-status",
        b"req-missing-cost",
        b"req-nan",
        b"req-negative",
        b"req-no-org",
        b"req-too-precise",
    ]
    assert all(fields[b"_error"] and fields[b"_source_id"] for _, fields in dead)
    assert (stream_length(), pending_count()) == (0, 0)


def test_pending_entries_of_a_dead_consumer_are_claimed(acme):
    organization, key = acme
    publish(usage_event(organization.pk, key.pk, f"req-{n}") for n in range(5))
    client = sync_redis()
    ensure_consumer_group(client)
    delivered = client.xreadgroup(
        keyspace.USAGE_GROUP, "worker-a", {keyspace.USAGE_STREAM: ">"}, count=10
    )
    assert len(delivered[0][1]) == 5  # worker-a dies here, before storing or acknowledging

    assert ingest_pending(consumer="worker-b", claim_idle_ms=0) == 5

    assert UsageRecord.objects.count() == 5
    assert LedgerEntry.objects.filter(kind=EntryKind.USAGE).count() == 5
    assert ledger_balance(organization) == START - 5 * Decimal("0.0000123400")
    assert (stream_length(), pending_count()) == (0, 0)


def test_entries_a_live_consumer_holds_are_not_claimed_early(acme):
    organization, key = acme
    publish(usage_event(organization.pk, key.pk, f"req-{n}") for n in range(3))
    client = sync_redis()
    ensure_consumer_group(client)
    client.xreadgroup(keyspace.USAGE_GROUP, "worker-a", {keyspace.USAGE_STREAM: ">"}, count=10)

    assert ingest_pending(consumer="worker-b", claim_idle_ms=60_000) == 0

    assert UsageRecord.objects.count() == 0
    assert pending_count() == 3


def test_redelivery_after_a_commit_without_ack_charges_nothing_more(acme):
    organization, key = acme
    events = [usage_event(organization.pk, key.pk, f"req-{n}") for n in range(4)]
    publish(events)
    client = sync_redis()
    ensure_consumer_group(client)
    client.xreadgroup(keyspace.USAGE_GROUP, "worker-a", {keyspace.USAGE_STREAM: ">"}, count=10)

    assert store_events(events[:2]) == 2  # worker-a committed half, then died before XACK

    assert ingest_pending(consumer="worker-b", claim_idle_ms=0) == 4

    assert UsageRecord.objects.count() == 4
    assert LedgerEntry.objects.filter(kind=EntryKind.USAGE).count() == 4
    assert ledger_balance(organization) == START - 4 * Decimal("0.0000123400")
    assert cached_balance(organization) == ledger_balance(organization)


def test_max_batches_bounds_one_run(acme):
    organization, key = acme
    publish(usage_event(organization.pk, key.pk, f"req-{n}") for n in range(10))

    assert ingest_pending(consumer="worker-a", batch_size=3, max_batches=2) == 6

    assert UsageRecord.objects.count() == 6
    assert stream_length() == 4


def test_usage_of_many_organizations_lands_on_each_balance(acme):
    organization, key = acme
    other = create_organization("Other", owner_email="ops@other.example")
    other_key, _ = create_api_key(other)
    publish(
        usage_event(org.pk, api_key.pk, f"req-{org.pk}-{n}", cost=Decimal("0.0100000000"))
        for n in range(25)
        for org, api_key in ((organization, key), (other, other_key))
    )

    ingest_pending(consumer="worker-a", batch_size=7)

    assert ledger_balance(organization) == START - Decimal("0.25")
    assert ledger_balance(other) == Decimal("-0.25")  # usage already served is always recorded
    assert cached_balance(organization) == START - Decimal("0.25")
    assert cached_balance(other) == Decimal("-0.25")


def test_ingest_task_drains_the_stream(acme):
    organization, key = acme
    publish(usage_event(organization.pk, key.pk, f"req-{n}") for n in range(30))

    assert ingest_usage(batch_size=8) == 30

    assert UsageRecord.objects.count() == 30
    assert stream_length() == 0
