"""Prove, per organization, that every copy of its money agrees; report what does not.

Three laws (amounts in USD):
1. the cached Balance equals the sum of the ledger entries;
2. every usage row that cost something has exactly one usage entry, and the rows' costs sum to
   minus the usage entries' sum;
3. the Redis hot counter, where the gateway has seeded one, equals the ledger balance minus the
   open reservations minus the cost of events still waiting in the usage stream.

Law 3 compares stores that move independently (a request settling in Redis, a batch being
committed before its ack), so a single reading can be off while money is in flight; it is
exact only once the pipeline is quiet. A hot-counter difference is therefore reported only if
a second reading, `recheck_delay_s` later, shows the same difference.

Mismatches are logged on "tollgate.reconcile", stored as ReconciliationIssue rows and returned.
Nothing is ever corrected here: an operator decides.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Now

from apps.ledger.hot_counter import read_hot_state
from apps.ledger.models import IssueKind, ReconciliationIssue
from apps.ledger.money import units_to_usd
from apps.ledger.selectors import cached_balance, ledger_balance, usage_entry_totals
from apps.metering.selectors import StreamBacklog, stream_backlog_by_org, usage_totals
from apps.tenants.models import Organization

log = logging.getLogger("tollgate.reconcile")

DEFAULT_RECHECK_DELAY_S = 2.0
NO_BACKLOG = StreamBacklog(entries=0, cost=Decimal(0))


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Two figures that should be equal: USD, or a row count for IssueKind.USAGE_COUNT."""

    org_id: int
    kind: str
    expected: Decimal
    actual: Decimal

    @property
    def difference(self) -> Decimal:
        return self.actual - self.expected


def reconcile_organization(
    organization: Organization, *, recheck_delay_s: float | None = None
) -> list[Mismatch]:
    """Check the three laws for one organization; store, log and return what disagrees."""
    return _reconcile([organization], recheck_delay_s)


def reconcile_all(*, recheck_delay_s: float | None = None) -> list[Mismatch]:
    """Check the three laws for every organization; store, log and return what disagrees."""
    return _reconcile(list(Organization.objects.order_by("pk")), recheck_delay_s)


def _reconcile(
    organizations: Sequence[Organization], recheck_delay_s: float | None
) -> list[Mismatch]:
    found: list[Mismatch] = []
    backlog = stream_backlog_by_org()
    suspects: list[tuple[Organization, Mismatch]] = []
    for organization in organizations:
        found += ledger_mismatches(organization)
        drift = hot_counter_mismatch(organization, backlog.get(organization.pk, NO_BACKLOG))
        if drift is not None:
            suspects.append((organization, drift))
    found += _persisting(suspects, _recheck_delay(recheck_delay_s))
    for mismatch in found:
        _record(mismatch)
    log.info("Reconciled %d organizations: %d mismatches", len(organizations), len(found))
    return found


def ledger_mismatches(organization: Organization) -> list[Mismatch]:
    """Laws 1 and 2: both sides live in PostgreSQL, so any difference is real."""
    org_id = organization.pk
    found = []
    truth, cached = ledger_balance(organization), cached_balance(organization)
    if truth != cached:
        found.append(Mismatch(org_id, IssueKind.CACHED_BALANCE, truth, cached))
    rows = usage_totals(organization)
    entry_count, entry_sum = usage_entry_totals(organization)
    if rows.charged_rows != entry_count:
        found.append(
            Mismatch(
                org_id, IssueKind.USAGE_COUNT, Decimal(rows.charged_rows), Decimal(entry_count)
            )
        )
    if rows.cost != -entry_sum:
        found.append(Mismatch(org_id, IssueKind.USAGE_COST, rows.cost, -entry_sum))
    return found


def hot_counter_mismatch(organization: Organization, backlog: StreamBacklog) -> Mismatch | None:
    """Law 3 from one reading, or None if it holds or the gateway has not seeded a counter."""
    state = read_hot_state(organization.pk)
    if state.credit_units is None:
        return None
    expected = ledger_balance(organization) - units_to_usd(state.held_units) - backlog.cost
    actual = units_to_usd(state.credit_units)
    if expected == actual:
        return None
    return Mismatch(organization.pk, IssueKind.HOT_COUNTER, expected, actual)


def _persisting(suspects: list[tuple[Organization, Mismatch]], delay_s: float) -> list[Mismatch]:
    """The hot-counter mismatches that a second reading confirms with the same difference."""
    if not suspects:
        return []
    time.sleep(delay_s)
    backlog = stream_backlog_by_org()
    confirmed = []
    for organization, first in suspects:
        again = hot_counter_mismatch(organization, backlog.get(organization.pk, NO_BACKLOG))
        if again is not None and again.difference == first.difference:
            confirmed.append(again)
    return confirmed


def _recheck_delay(override: float | None) -> float:
    if override is not None:
        return override
    return getattr(settings, "RECONCILE_RECHECK_DELAY_S", DEFAULT_RECHECK_DELAY_S)


def _record(mismatch: Mismatch) -> None:
    """Log the mismatch and store it: a new open issue, or one more sighting of the open one."""
    log.error(
        "Reconciliation mismatch for organization %d: %s expected %s, actual %s",
        mismatch.org_id,
        mismatch.kind,
        mismatch.expected,
        mismatch.actual,
    )
    issue, created = ReconciliationIssue.objects.get_or_create(
        organization_id=mismatch.org_id,
        kind=mismatch.kind,
        resolved=False,
        defaults={"expected": mismatch.expected, "actual": mismatch.actual},
    )
    if not created:
        ReconciliationIssue.objects.filter(pk=issue.pk).update(
            expected=mismatch.expected,
            actual=mismatch.actual,
            last_seen_at=Now(),
            times_seen=F("times_seen") + 1,
        )
