"""Writes to the ledger. Every change of money is one new LedgerEntry plus an F() increment of
the cached Balance, in one transaction; nothing here updates or deletes an entry.

Amounts are USD Decimals with at most 10 decimal places (apps/ledger/money.py).
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Now

from apps.ledger.bulk_insert import insert_new_rows
from apps.ledger.hot_counter import forward_to_hot_counter
from apps.ledger.models import Balance, EntryKind, LedgerEntry
from apps.ledger.money import exact_usd, format_usd, usd_to_units
from apps.tenants.models import Organization

INGEST_ACTOR = "system:ingest"


class IdempotencyConflict(ValueError):
    """The idempotency key was used before for a different change."""


class BelowSpendingFloor(ValueError):
    """The change would take the balance below the organization's spending floor."""


@transaction.atomic
def post_entry(
    organization: Organization,
    *,
    amount: Decimal,
    kind: str,
    idempotency_key: str,
    memo: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str,
) -> tuple[LedgerEntry, bool]:
    """Append one entry (`amount` in USD, signed) and move the cached balance by it.

    Returns (entry, created). Posting an idempotency key again returns the first entry with
    created=False and changes nothing, also when callers race: the unique key lets exactly one
    insert win. Reusing a key for a different organization, amount or kind raises
    IdempotencyConflict.

    After commit, a new entry of any kind but usage is forwarded to the tenant's Redis hot
    counter if the gateway has seeded one (an absent counter is seeded later from a ledger that
    already has it). Usage entries are not: the gateway took the cost when it settled."""
    amount = exact_usd(amount)
    if amount == 0:
        raise ValueError("A ledger entry must move money; the amount is zero.")
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                organization=organization,
                amount=amount,
                kind=kind,
                idempotency_key=idempotency_key,
                memo=memo,
                actor=actor,
                actor_label=actor_label,
            )
    except IntegrityError:
        existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:  # another constraint failed: not a repeat
            raise
        _check_same_change(existing, organization, amount, kind)
        return existing, False
    apply_to_balances({organization.pk: amount})
    if kind != EntryKind.USAGE:
        units = usd_to_units(amount)
        transaction.on_commit(partial(forward_to_hot_counter, organization.pk, units))
    return entry, True


def grant_credits(
    organization: Organization,
    amount: Decimal,
    *,
    reason: str,
    idempotency_key: str | None = None,
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
) -> tuple[LedgerEntry, bool]:
    """Give (`amount` > 0, kind grant) or take away (`amount` < 0, kind adjustment) USD.

    A deduction may not take the balance below the organization's spending floor
    (BelowSpendingFloor). Without an idempotency key every call is a new grant. After commit the
    change reaches the Redis hot counter if the gateway has seeded it (see `post_entry`)."""
    amount = exact_usd(amount)
    kind = EntryKind.GRANT if amount > 0 else EntryKind.ADJUSTMENT
    key = idempotency_key or f"grant:{uuid.uuid4()}"
    label = actor_label or (getattr(actor, "email", "") if actor else "") or "system"
    with transaction.atomic():
        if amount < 0:
            current = lock_balance(organization)
            if not LedgerEntry.objects.filter(idempotency_key=key).exists():
                check_spending_floor(organization, current, amount)
        return post_entry(
            organization,
            amount=amount,
            kind=kind,
            idempotency_key=key,
            memo=reason,
            actor=actor,
            actor_label=label,
        )


@dataclass(frozen=True, slots=True)
class UsageDebit:
    """The charge for one metered request: `cost` USD (> 0) owed by `org_id`."""

    org_id: int
    request_id: str
    cost: Decimal
    memo: str


def post_usage_debits(debits: Iterable[UsageDebit]) -> dict[int, Decimal]:
    """Append a usage entry (amount -cost, key "usage:<request id>") for each debit not posted
    before, and move each organization's cached balance once by the sum of its new entries.

    Must run inside the caller's transaction (the one that stores the usage rows). Returns the
    balance change per organization (USD). The hot counter is not touched: the gateway debited
    it when the request finished."""
    if not connection.in_atomic_block:
        raise RuntimeError("post_usage_debits must run inside a transaction")
    by_key: dict[str, UsageDebit] = {}
    for debit in debits:  # the first of repeated request ids wins
        by_key.setdefault(usage_idempotency_key(debit.request_id), debit)
    keys = sorted(by_key)  # one lock order for every writer
    amounts = {key: -exact_usd(by_key[key].cost) for key in keys}
    if any(amount >= 0 for amount in amounts.values()):
        raise ValueError("A usage debit must cost more than zero.")
    inserted = insert_new_rows(
        LedgerEntry,
        {
            "organization": [by_key[key].org_id for key in keys],
            "amount": [amounts[key] for key in keys],
            "kind": [EntryKind.USAGE.value] * len(keys),
            "idempotency_key": keys,
            "actor_label": [INGEST_ACTOR] * len(keys),
            "memo": [by_key[key].memo for key in keys],
        },
        conflict_field="idempotency_key",
    )
    deltas: defaultdict[int, Decimal] = defaultdict(Decimal)
    for key in inserted:
        deltas[by_key[key].org_id] += amounts[key]
    apply_to_balances(deltas)
    return dict(deltas)


def usage_idempotency_key(request_id: str) -> str:
    return f"usage:{request_id}"


def apply_to_balances(deltas: Mapping[int, Decimal]) -> None:
    """Add each organization's change (USD) to its cached balance: one F() update per
    organization, in organization-id order so concurrent writers lock rows in the same order.
    Creates missing Balance rows first (concurrency-safe: insert-or-skip on the primary key)."""
    if not connection.in_atomic_block:
        raise RuntimeError("balances move only together with their ledger entries")
    changes = {org_id: delta for org_id, delta in deltas.items() if delta != 0}
    Balance.objects.bulk_create(
        [Balance(organization_id=org_id) for org_id in sorted(changes)], ignore_conflicts=True
    )
    for org_id in sorted(changes):
        Balance.objects.filter(pk=org_id).update(
            amount=F("amount") + changes[org_id], updated_at=Now()
        )


def lock_balance(organization: Organization) -> Decimal:
    """Lock the organization's cached balance row (creating it if missing) and return it (USD):
    deductions of one organization then run one at a time. Inside a transaction."""
    Balance.objects.bulk_create([Balance(organization=organization)], ignore_conflicts=True)
    return Balance.objects.select_for_update().get(pk=organization.pk).amount


def check_spending_floor(organization: Organization, current: Decimal, amount: Decimal) -> None:
    """Refuse a change (USD) that would take `current` below the spending floor."""
    floor = organization.spending_floor
    if current + amount < floor:
        raise BelowSpendingFloor(
            f"{organization} has {format_usd(current)} USD; taking {format_usd(-amount)} USD "
            f"would go below its floor of {format_usd(floor)} USD."
        )


def _check_same_change(
    existing: LedgerEntry, organization: Organization, amount: Decimal, kind: str
) -> None:
    if (existing.organization_id, existing.amount, existing.kind) != (
        organization.pk,
        amount,
        kind,
    ):
        raise IdempotencyConflict(
            f"Idempotency key {existing.idempotency_key!r} was used for a different change "
            f"(entry {existing.pk}: {existing.kind} {format_usd(existing.amount)} USD "
            f"for organization {existing.organization_id})."
        )
