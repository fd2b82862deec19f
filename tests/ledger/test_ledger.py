"""The ledger: exact money, idempotent postings, commands, balances and reconciliation."""

import threading
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.keys.services import create_api_key
from apps.ledger.models import Balance, EntryKind, IssueKind, LedgerEntry, ReconciliationIssue
from apps.ledger.money import (
    InexactAmount,
    format_usd,
    parse_usd,
    quantize_usd,
    units_to_usd,
    usd_to_units,
)
from apps.ledger.reconcile import Mismatch, reconcile_all, reconcile_organization
from apps.ledger.selectors import cached_balance, entries_for, ledger_balance
from apps.ledger.services import (
    BelowSpendingFloor,
    IdempotencyConflict,
    UsageDebit,
    grant_credits,
    post_entry,
    post_usage_debits,
)
from apps.ledger.tasks import reconcile as reconcile_task
from apps.metering.models import UsageRecord
from apps.tenants.models import BillingMode, Organization
from apps.tenants.services import create_organization
from tests.metering.usage_factory import publish, usage_event


@pytest.fixture
def acme(db) -> Organization:
    return create_organization("Acme", owner_email="ops@acme.example")


def last_line(output: StringIO) -> str:
    return output.getvalue().splitlines()[-1]


# --- money ------------------------------------------------------------------------------------


def test_rounding_is_half_up_to_a_tenth_of_a_nano_dollar():
    assert quantize_usd(Decimal("0.00000000005")) == Decimal("0.0000000001")
    assert quantize_usd(Decimal("0.000000000049")) == Decimal("0.0000000000")
    assert quantize_usd(Decimal("-0.00000000005")) == Decimal("-0.0000000001")
    assert quantize_usd(Decimal("2.00000000015")) == Decimal("2.0000000002")


def test_units_convert_exactly_both_ways():
    assert usd_to_units(Decimal("12.3456789012")) == 123_456_789_012
    assert units_to_usd(123_456_789_012) == Decimal("12.3456789012")
    assert units_to_usd(-1) == Decimal("-0.0000000001")
    assert format_usd(Decimal(0)) == "0.0000000000"


def test_floats_never_become_money():
    with pytest.raises(TypeError):
        quantize_usd(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        units_to_usd(1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0.00000000001", "NaN", "Infinity", "-inf", "1e10", "abc", ""])
def test_typed_amounts_must_be_plain_and_exact(text):
    with pytest.raises(InexactAmount):
        parse_usd(text)


# --- postings ---------------------------------------------------------------------------------


def test_same_idempotency_key_credits_once(acme):
    first, created = grant_credits(acme, Decimal("5"), reason="welcome", idempotency_key="w-1")
    again, created_again = grant_credits(
        acme, Decimal("5"), reason="welcome", idempotency_key="w-1"
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert LedgerEntry.objects.filter(organization=acme).count() == 1
    assert ledger_balance(acme) == Decimal("5.0000000000")
    assert cached_balance(acme) == Decimal("5.0000000000")


@pytest.mark.django_db(transaction=True)
def test_concurrent_grants_with_one_key_post_one_entry():
    organization = create_organization("Racers", owner_email="ops@racers.example")
    start = threading.Barrier(5)
    results: list[bool] = []
    errors: list[BaseException] = []

    def grant() -> None:
        try:
            start.wait(timeout=10)
            _, created = grant_credits(
                organization, Decimal("7.5"), reason="promo", idempotency_key="promo-42"
            )
            results.append(created)
        except BaseException as error:  # reported below, a thread cannot fail the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=grant) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(results) == [False, False, False, False, True]
    assert LedgerEntry.objects.filter(organization=organization).count() == 1
    assert ledger_balance(organization) == Decimal("7.5000000000")
    assert cached_balance(organization) == Decimal("7.5000000000")


def test_reusing_a_key_for_another_amount_is_refused(acme):
    grant_credits(acme, Decimal("5"), reason="welcome", idempotency_key="w-1")

    with pytest.raises(IdempotencyConflict):
        grant_credits(acme, Decimal("6"), reason="welcome", idempotency_key="w-1")

    assert ledger_balance(acme) == Decimal("5")


def test_a_deduction_is_an_adjustment_and_stops_at_the_floor(acme):
    grant_credits(acme, Decimal("5"), reason="welcome")

    with pytest.raises(BelowSpendingFloor):
        grant_credits(acme, Decimal("-5.0000000001"), reason="too much")
    entry, _ = grant_credits(acme, Decimal("-2"), reason="correction")

    assert entry.kind == EntryKind.ADJUSTMENT
    assert ledger_balance(acme) == Decimal("3")
    assert LedgerEntry.objects.filter(organization=acme).count() == 2


def test_postpaid_organizations_may_go_down_to_their_credit_limit(acme):
    Organization.objects.filter(pk=acme.pk).update(
        billing_mode=BillingMode.POSTPAID, credit_limit=Decimal("10")
    )
    acme.refresh_from_db()

    grant_credits(acme, Decimal("-10"), reason="invoice correction")
    with pytest.raises(BelowSpendingFloor):
        grant_credits(acme, Decimal("-0.0000000001"), reason="one tick more")

    assert ledger_balance(acme) == Decimal("-10")


def test_amounts_with_more_than_ten_decimals_are_refused(acme):
    with pytest.raises(InexactAmount):
        grant_credits(acme, Decimal("1.00000000001"), reason="too precise")
    with pytest.raises(ValueError, match="zero"):
        post_entry(
            acme,
            amount=Decimal(0),
            kind=EntryKind.REFUND,
            idempotency_key="zero",
            memo="",
            actor_label="test",
        )

    assert LedgerEntry.objects.count() == 0


def test_balance_is_the_sum_of_the_entries(acme):
    grant_credits(acme, Decimal("10"), reason="welcome")
    post_entry(
        acme,
        amount=Decimal("25.1234567891"),
        kind=EntryKind.TOPUP,
        idempotency_key="stripe:pi_1",
        memo="card",
        actor_label="system:stripe",
    )
    post_usage_debits(
        [
            UsageDebit(acme.pk, "req-1", Decimal("0.0000000007"), "default"),
            UsageDebit(acme.pk, "req-2", Decimal("1.5"), "default"),
            UsageDebit(acme.pk, "req-1", Decimal("0.0000000007"), "default"),  # a repeat
        ]
    )
    grant_credits(acme, Decimal("-0.1234567891"), reason="correction")

    amounts = [entry.amount for entry in entries_for(acme)]
    assert amounts == [
        Decimal("10"),
        Decimal("25.1234567891"),
        Decimal("-0.0000000007"),
        Decimal("-1.5"),
        Decimal("-0.1234567891"),
    ]
    assert ledger_balance(acme) == sum(amounts) == Decimal("33.4999999993")
    assert cached_balance(acme) == Decimal("33.4999999993")


def test_grants_reach_the_hot_counter_only_once_it_exists(acme, django_capture_on_commit_callbacks):
    credit = keyspace.credit_available(acme.pk)
    with django_capture_on_commit_callbacks(execute=True):
        grant_credits(acme, Decimal("1"), reason="before the gateway saw the tenant")
    assert sync_redis().get(credit) is None

    sync_redis().set(credit, usd_to_units(Decimal("1")))
    with django_capture_on_commit_callbacks(execute=True):
        grant_credits(acme, Decimal("2.5"), reason="top up", idempotency_key="t-1")
        grant_credits(acme, Decimal("2.5"), reason="top up", idempotency_key="t-1")
        grant_credits(acme, Decimal("-0.5"), reason="correction")

    assert int(sync_redis().get(credit)) == usd_to_units(Decimal("3"))


def test_usage_debits_leave_the_hot_counter_alone(acme):
    sync_redis().set(keyspace.credit_available(acme.pk), 123)

    post_usage_debits([UsageDebit(acme.pk, "req-1", Decimal("0.01"), "default")])

    assert int(sync_redis().get(keyspace.credit_available(acme.pk))) == 123


# --- commands ---------------------------------------------------------------------------------


def test_grant_command_prints_the_new_balance_last(acme):
    out = StringIO()
    call_command("grant_credits", "Acme", "12.34", "--reason", "trial", stdout=out)
    assert last_line(out) == "12.3400000000"

    out = StringIO()
    call_command("grant_credits", str(acme.pk), "-0.0000000001", "--reason", "fix", stdout=out)
    assert last_line(out) == "12.3399999999"

    assert [(e.kind, e.actor_label) for e in entries_for(acme)] == [
        ("grant", "cli"),
        ("adjustment", "cli"),
    ]


def test_grant_command_with_a_key_grants_once(acme):
    for _ in range(2):
        out = StringIO()
        call_command(
            "grant_credits", "Acme", "3", "--reason", "promo", "--idempotency-key", "p-1",
            stdout=out,
        )  # fmt: skip
        assert last_line(out) == "3.0000000000"

    assert LedgerEntry.objects.filter(organization=acme).count() == 1


@pytest.mark.parametrize("amount", ["1.00000000001", "NaN", "Infinity", "ten"])
def test_grant_command_refuses_inexact_amounts(acme, amount):
    with pytest.raises(CommandError):
        call_command("grant_credits", "Acme", amount, "--reason", "x", stdout=StringIO())

    assert LedgerEntry.objects.count() == 0


def test_grant_command_refuses_an_unknown_organization(acme):
    with pytest.raises(CommandError, match="No organization"):
        call_command("grant_credits", "Nobody", "1", "--reason", "x", stdout=StringIO())


def test_balance_command_ingests_waiting_usage_first(acme):
    key, _ = create_api_key(acme)
    grant_credits(acme, Decimal("12.34"), reason="trial")
    publish(
        [
            usage_event(acme.pk, key.pk, "req-1", cost=Decimal("0.0000000001")),
            usage_event(acme.pk, key.pk, "req-2", cost=Decimal("0.34")),
        ]
    )

    out = StringIO()
    call_command("balance", "Acme", stdout=out)

    assert last_line(out) == "11.9999999999"
    assert out.getvalue() == "11.9999999999\n"


# --- reconciliation ---------------------------------------------------------------------------


def test_reconcile_finds_nothing_on_a_consistent_organization(acme):
    key, _ = create_api_key(acme)
    grant_credits(acme, Decimal("10"), reason="trial")
    publish([usage_event(acme.pk, key.pk, f"req-{n}", cost=Decimal("0.25")) for n in range(4)])
    call_command("balance", "Acme", stdout=StringIO())  # ingests the four
    # The gateway's view: 10 - 1 ingested, 0.5 held by a running request, 0.25 still in the
    # stream; the counter has all three taken off.
    client = sync_redis()
    client.hset(keyspace.reservations(acme.pk), "req-running", usd_to_units(Decimal("0.5")))
    publish([usage_event(acme.pk, key.pk, "req-late", cost=Decimal("0.25"))])
    client.set(keyspace.credit_available(acme.pk), usd_to_units(Decimal("8.25")))

    assert reconcile_organization(acme, recheck_delay_s=0) == []
    assert reconcile_all(recheck_delay_s=0) == []
    assert ReconciliationIssue.objects.count() == 0


def test_reconcile_reports_a_tampered_cached_balance_and_corrects_nothing(acme):
    grant_credits(acme, Decimal("10"), reason="trial")
    Balance.objects.filter(pk=acme.pk).update(amount=Decimal("11"))

    found = reconcile_organization(acme, recheck_delay_s=0)
    reconcile_all(recheck_delay_s=0)

    assert found == [Mismatch(acme.pk, IssueKind.CACHED_BALANCE, Decimal(10), Decimal(11))]
    issue = ReconciliationIssue.objects.get()
    assert (issue.organization_id, issue.kind, issue.expected, issue.actual) == (
        acme.pk,
        IssueKind.CACHED_BALANCE,
        Decimal("10"),
        Decimal("11"),
    )
    assert (issue.times_seen, issue.resolved) == (2, False)
    assert cached_balance(acme) == Decimal("11")  # left for an operator
    assert ledger_balance(acme) == Decimal("10")


def test_reconcile_reports_usage_rows_without_debits(acme):
    key, _ = create_api_key(acme)
    grant_credits(acme, Decimal("10"), reason="trial")
    publish([usage_event(acme.pk, key.pk, "req-1", cost=Decimal("0.5"))])
    call_command("balance", "Acme", stdout=StringIO())
    LedgerEntry.objects.filter(kind=EntryKind.USAGE).delete()  # behind the services' back
    Balance.objects.filter(pk=acme.pk).update(amount=Decimal("10"))

    found = reconcile_organization(acme, recheck_delay_s=0)

    assert found == [
        Mismatch(acme.pk, IssueKind.USAGE_COUNT, Decimal(1), Decimal(0)),
        Mismatch(acme.pk, IssueKind.USAGE_COST, Decimal("0.5"), Decimal(0)),
    ]


def test_reconcile_reports_a_hot_counter_that_stays_off(acme):
    grant_credits(acme, Decimal("10"), reason="trial")
    sync_redis().set(keyspace.credit_available(acme.pk), usd_to_units(Decimal("9")))

    found = reconcile_organization(acme, recheck_delay_s=0)

    assert found == [Mismatch(acme.pk, IssueKind.HOT_COUNTER, Decimal(10), Decimal(9))]
    assert int(sync_redis().get(keyspace.credit_available(acme.pk))) == usd_to_units(Decimal("9"))


def test_reconcile_task_checks_every_organization_and_counts_mismatches(acme, settings):
    settings.RECONCILE_RECHECK_DELAY_S = 0
    other = create_organization("Other", owner_email="ops@other.example")
    grant_credits(acme, Decimal("1"), reason="trial")
    grant_credits(other, Decimal("2"), reason="trial")
    Balance.objects.filter(pk=other.pk).update(amount=Decimal("0"))

    assert reconcile_task() == 1

    issue = ReconciliationIssue.objects.get()
    assert (issue.organization_id, issue.kind) == (other.pk, IssueKind.CACHED_BALANCE)


@pytest.mark.django_db(transaction=True)
def test_live_gateway_traffic_reconciles_before_and_after_ingest(alice, client_for):
    client = client_for(alice.secret)
    hello = [{"role": "user", "content": "hello"}]
    for _ in range(3):
        client.chat.completions.create(model="default", messages=hello)
    for _ in client.chat.completions.create(model="default", messages=hello, stream=True):
        pass
    deadline = time.monotonic() + 10
    while sync_redis().xlen(keyspace.USAGE_STREAM) < 4:  # the stream settles after its last byte
        assert time.monotonic() < deadline
        time.sleep(0.01)
    organization = alice.organization

    assert sync_redis().exists(keyspace.credit_available(organization.pk))
    assert reconcile_organization(organization, recheck_delay_s=0.2) == []
    call_command("balance", str(organization.pk), stdout=StringIO())
    assert UsageRecord.objects.filter(organization=organization).count() == 4
    assert ledger_balance(organization) < Decimal(100)
    assert reconcile_organization(organization, recheck_delay_s=0.2) == []


def test_top_ups_reach_the_hot_counter_and_usage_entries_do_not(
    acme, django_capture_on_commit_callbacks
):
    credit = keyspace.credit_available(acme.pk)
    sync_redis().set(credit, 0)
    with django_capture_on_commit_callbacks(execute=True):
        for kind, amount in ((EntryKind.TOPUP, "20"), (EntryKind.USAGE, "-1")):
            post_entry(
                acme,
                amount=Decimal(amount),
                kind=kind,
                idempotency_key=f"{kind}-1",
                memo="",
                actor_label="system:stripe",
            )

    assert int(sync_redis().get(credit)) == usd_to_units(Decimal("20"))
    assert ledger_balance(acme) == Decimal("19")
