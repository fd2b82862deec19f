"""Reads of the management API, each scoped to one organization by its first argument.

Filters are keyword arguments already validated by the views; None means "no filter".
Usage times are `started_at`, ledger times `created_at`: `since` inclusive, `until` exclusive.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from apps.api.models import ManagementToken
from apps.keys.models import APIKey
from apps.ledger.models import LedgerEntry
from apps.ledger.money import quantize_usd
from apps.ledger.selectors import ledger_balance
from apps.metering.models import UsageRecord
from apps.tenants.models import Invitation, Membership, Organization

GROUP_COLUMNS = {"model": "model", "key": "key_id", "day": "day"}


def keys_of(organization: Organization, *, status: str | None = None) -> QuerySet[APIKey]:
    """The organization's API keys, optionally only those active, revoked or expired now."""
    keys = APIKey.objects.filter(organization=organization).select_related("created_by")
    now = timezone.now()
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    if status == "active":
        keys = keys.filter(unexpired, revoked_at__isnull=True)
    elif status == "revoked":
        keys = keys.filter(revoked_at__isnull=False)
    elif status == "expired":
        keys = keys.filter(revoked_at__isnull=True).exclude(unexpired)
    return keys


def members_of(organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user")


def open_invitations_of(organization: Organization) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (expired ones included, marked so)."""
    return Invitation.objects.filter(
        organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
    ).select_related("invited_by")


def memberships_of(user: Any, *, organization_id: int | None = None) -> QuerySet[Membership]:
    """The user's memberships with their organizations, optionally of one organization."""
    memberships = Membership.objects.filter(user_id=user.pk).select_related("organization")
    if organization_id is not None:
        memberships = memberships.filter(organization_id=organization_id)
    return memberships


def management_tokens_of(organization: Organization) -> QuerySet[ManagementToken]:
    return ManagementToken.objects.filter(organization=organization).select_related("created_by")


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal  # USD


@dataclass(frozen=True, slots=True)
class UsageGroup(UsageTotals):
    group: str  # model name, key id or ISO date


def usage_totals(records: QuerySet[UsageRecord]) -> UsageTotals:
    """Requests, tokens and cost (USD) of the rows."""
    return UsageTotals(**_finish(records.aggregate(**_TOTALS)))


def usage_groups(records: QuerySet[UsageRecord], group_by: str) -> list[UsageGroup]:
    """The totals per model, key id or UTC day of the rows, in group order."""
    column = GROUP_COLUMNS[group_by]
    if group_by == "day":
        records = records.annotate(day=TruncDate("started_at", tzinfo=UTC))
    rows = records.values(column).annotate(**_TOTALS).order_by(column)
    return [UsageGroup(group=_label(row.pop(column)), **_finish(row)) for row in rows]


def balance_of(organization: Organization) -> dict[str, Any]:
    """The ledger balance (USD) and what requests may still spend before the floor."""
    balance = ledger_balance(organization)
    return {
        "currency": "USD",
        "balance": balance,
        "billing_mode": organization.billing_mode,
        "credit_limit": organization.credit_limit,
        "available": quantize_usd(balance - organization.spending_floor),
    }


def ledger_entries(
    organization: Organization,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[LedgerEntry]:
    """The organization's ledger entries matching every given filter."""
    conditions = {"kind": kind, "created_at__gte": since, "created_at__lt": until}
    return LedgerEntry.objects.filter(
        organization=organization,
        **{name: value for name, value in conditions.items() if value is not None},
    )


_TOTALS = {
    "requests": Count("pk"),
    "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
    "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
    "cost": Sum("cost"),
}


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "cost": quantize_usd(row["cost"] or Decimal(0))}


def _label(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
