"""Everything an operator needs on one organization's page, in a fixed number of queries."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db.models import Count, Sum

from apps.keys.models import APIKey
from apps.ledger.models import LedgerEntry, ReconciliationIssue
from apps.ledger.money import format_usd
from apps.ledger.selectors import cached_balance, ledger_balance
from apps.metering.models import UsageRecord
from apps.tenants.models import Organization

RECENT = 20
KEYS_SHOWN = 100


@dataclass(frozen=True)
class OrganizationSummary:
    """Money as USD text with 10 places: ``balance`` is the ledger sum (the truth),
    ``cached_balance`` the cached row the gateway is seeded from; they differ only if the
    reconciliation reports it."""

    balance: str
    cached_balance: str
    spending_floor: str
    keys: list[APIKey]
    recent_usage: list[UsageRecord]
    usage_30d: dict[str, Any]
    recent_entries: list[LedgerEntry]
    open_issues: list[ReconciliationIssue]
    invoices: list[Any] | None  # None while the billing app has no Invoice model


def organization_summary(organization: Organization, *, since: Any) -> OrganizationSummary:
    """The organization's money, keys, recent usage (and usage totals since ``since``),
    recent ledger entries, open reconciliation issues and invoices: eight queries at most."""
    return OrganizationSummary(
        balance=format_usd(ledger_balance(organization)),
        cached_balance=format_usd(cached_balance(organization)),
        spending_floor=format_usd(organization.spending_floor),
        keys=list(
            APIKey.objects.filter(organization=organization)
            .select_related("created_by")
            .order_by("-created_at", "-pk")[:KEYS_SHOWN]
        ),
        recent_usage=list(
            UsageRecord.objects.filter(organization=organization).order_by("-started_at")[:RECENT]
        ),
        usage_30d=_usage_since(organization, since),
        recent_entries=list(
            LedgerEntry.objects.filter(organization=organization).order_by("-created_at", "-pk")[
                :RECENT
            ]
        ),
        open_issues=list(
            ReconciliationIssue.objects.filter(organization=organization, resolved=False)
        ),
        invoices=_invoices(organization),
    )


def _usage_since(organization: Organization, since: Any) -> dict[str, Any]:
    """Requests, prompt and completion tokens and cost (USD text) since ``since``."""
    totals = UsageRecord.objects.filter(organization=organization, started_at__gte=since).aggregate(
        requests=Count("pk"),
        prompt_tokens=Sum("prompt_tokens", default=0),
        completion_tokens=Sum("completion_tokens", default=0),
        cost=Sum("cost", default=Decimal(0)),
    )
    totals["cost"] = format_usd(totals["cost"])
    return totals


def _invoices(organization: Organization) -> list[Any] | None:
    """The organization's latest invoices, once apps.billing defines an Invoice model."""
    try:
        invoice_model = apps.get_model("billing", "Invoice")
    except LookupError:
        return None
    return list(invoice_model.objects.filter(organization=organization).order_by("-pk")[:RECENT])
