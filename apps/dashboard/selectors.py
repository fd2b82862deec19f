"""Reads behind the dashboard pages. Every function takes the organization and filters by it
first: nothing here can return another tenant's rows. Money is USD (Decimal, 10 places)."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from apps.keys.models import APIKey
from apps.keys.secrets import hash_secret
from apps.ledger.models import LedgerEntry
from apps.metering.models import UsageRecord
from apps.metering.selectors import usage_records
from apps.tenants.models import Invitation, Membership, Organization

CHART_DAYS = 30
RECENT_REQUESTS = 10


@dataclass(frozen=True)
class UsageFilters:
    """What the usage page shows: `start` to `end` (UTC days, both included)."""

    start: date
    end: date
    key: APIKey | None = None
    model: str = ""

    @classmethod
    def last_days(cls, days: int = CHART_DAYS) -> "UsageFilters":
        today = timezone.now().astimezone(UTC).date()
        return cls(start=today - timedelta(days=days - 1), end=today)


@dataclass(frozen=True)
class MonthSummary:
    spend: Decimal  # USD this calendar month (UTC)
    requests: int


@dataclass
class DailySeries:
    """Per UTC day from start to end: spend (USD) and tokens per model, for the charts."""

    days: list[date]
    spend: list[Decimal]
    tokens_by_model: dict[str, list[int]] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return sorted(self.tokens_by_model)

    def table_rows(self) -> list[tuple[date, Decimal, list[int]]]:
        """(day, spend, tokens of each model in `models` order) for the accessible table."""
        return [
            (day, self.spend[i], [self.tokens_by_model[name][i] for name in self.models])
            for i, day in enumerate(self.days)
        ]

    def as_chart_data(self) -> dict[str, object]:
        """JSON-ready: days as unix seconds (UTC midnight), money as decimal strings."""
        return {
            "days": [int(datetime.combine(d, time(), UTC).timestamp()) for d in self.days],
            "spend": [str(amount) for amount in self.spend],
            "models": [
                {"name": name, "tokens": tokens}
                for name, tokens in sorted(self.tokens_by_model.items())
            ],
        }


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC)."""
    return (
        datetime.combine(start, time(), UTC),
        datetime.combine(end + timedelta(days=1), time(), UTC),
    )


def usage_for(organization: Organization, filters: UsageFilters) -> QuerySet[UsageRecord]:
    """The organization's usage rows matching the filters, newest first."""
    since, until = _day_bounds(filters.start, filters.end)
    rows = usage_records(
        organization,
        key=None if filters.key is None else filters.key.pk,
        model=filters.model or None,
        since=since,
        until=until,
    )
    return rows.order_by("-started_at", "-pk")


def daily_series(organization: Organization, filters: UsageFilters) -> DailySeries:
    """Spend and tokens per model for each day of the filters' range (one query)."""
    grouped = (
        usage_for(organization, filters)
        .order_by()
        .annotate(day=TruncDate("started_at", tzinfo=UTC))
        .values("day", "model")
        .annotate(cost=Sum("cost"), tokens=Sum(F("prompt_tokens") + F("completion_tokens")))
    )
    count = (filters.end - filters.start).days + 1
    days = [filters.start + timedelta(days=offset) for offset in range(count)]
    index = {day: position for position, day in enumerate(days)}
    spend = [Decimal(0)] * count
    tokens: defaultdict[str, list[int]] = defaultdict(lambda: [0] * count)
    for row in grouped:
        position = index[row["day"]]
        spend[position] += row["cost"]
        tokens[row["model"]][position] += row["tokens"]
    return DailySeries(days=days, spend=spend, tokens_by_model=dict(tokens))


def month_summary(organization: Organization) -> MonthSummary:
    """Spend (USD) and requests since the first of this month, UTC."""
    now = timezone.now().astimezone(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    totals = UsageRecord.objects.filter(organization=organization, started_at__gte=start).aggregate(
        spend=Sum("cost"), requests=Count("pk")
    )
    return MonthSummary(spend=totals["spend"] or Decimal(0), requests=totals["requests"])


def recent_requests(organization: Organization, limit: int = RECENT_REQUESTS) -> list[UsageRecord]:
    return list(
        UsageRecord.objects.filter(organization=organization).order_by("-started_at", "-pk")[:limit]
    )


def keys_of(organization: Organization) -> QuerySet[APIKey]:
    """The organization's keys, newest first, with their creators."""
    return (
        APIKey.objects.filter(organization=organization)
        .select_related("created_by")
        .order_by("-created_at", "-pk")
    )


def key_of(organization: Organization, key_id: int) -> APIKey:
    """One of the organization's keys; Http404 for any other id."""
    key = keys_of(organization).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key


def key_names(organization: Organization, key_ids: set[int]) -> dict[int, str]:
    """Id → "name (prefix…)" for the organization's keys among `key_ids`."""
    rows = APIKey.objects.filter(organization=organization, pk__in=key_ids)
    return {key.pk: f"{key.name} ({key.prefix}…)" for key in rows}


def models_used(organization: Organization) -> list[str]:
    """Model names that appear in the organization's usage, sorted."""
    return list(
        UsageRecord.objects.filter(organization=organization)
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )


def ledger_history(organization: Organization) -> QuerySet[LedgerEntry]:
    """The organization's ledger entries, newest first."""
    return LedgerEntry.objects.filter(organization=organization).order_by("-created_at", "-pk")


def members_of(organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("created_at", "pk")
    )


def memberships_of(user: object) -> QuerySet[Membership]:
    """The user's organizations (for the switcher), by name."""
    return (
        Membership.objects.filter(user_id=getattr(user, "pk", None))
        .select_related("organization")
        .order_by("organization__name", "organization_id")
    )


def member_of(organization: Organization, membership_id: int) -> Membership:
    """One membership of the organization; Http404 for any other id."""
    found = members_of(organization).filter(pk=membership_id).first()
    if found is None:
        raise Http404("No such member.")
    return found


def open_invitations_of(organization: Organization) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (expired ones too), newest first."""
    return (
        Invitation.objects.filter(
            organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("invited_by")
        .order_by("-created_at", "-pk")
    )


def invitation_of(organization: Organization, invitation_id: int) -> Invitation:
    """One of the organization's invitations; Http404 for any other id."""
    found = Invitation.objects.filter(organization=organization, pk=invitation_id).first()
    if found is None:
        raise Http404("No such invitation.")
    return found


def invitation_by_token(token: str) -> Invitation | None:
    """The invitation a link's token belongs to (looked up by its HMAC), or None."""
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=hash_secret(token))
        .first()
    )
