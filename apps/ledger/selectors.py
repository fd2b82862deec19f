"""Reads of the ledger. Amounts are USD with 10 decimal places."""

from decimal import Decimal

from django.db.models import Count, QuerySet, Sum

from apps.ledger.models import Balance, EntryKind, LedgerEntry
from apps.ledger.money import quantize_usd
from apps.tenants.models import Organization


def ledger_balance(organization: Organization) -> Decimal:
    """The organization's balance (USD): the sum of its ledger entries. The truth."""
    total = LedgerEntry.objects.filter(organization=organization).aggregate(total=Sum("amount"))
    return quantize_usd(total["total"] or Decimal(0))


def cached_balance(organization: Organization) -> Decimal:
    """The cached balance row (USD); 0 if the organization has never had an entry."""
    amount = Balance.objects.filter(pk=organization.pk).values_list("amount", flat=True).first()
    return quantize_usd(amount if amount is not None else Decimal(0))


def entries_for(organization: Organization) -> QuerySet[LedgerEntry]:
    """The organization's entries, oldest first."""
    return LedgerEntry.objects.filter(organization=organization).order_by("created_at", "pk")


def usage_entry_totals(organization: Organization) -> tuple[int, Decimal]:
    """(number of usage entries, their sum in USD — negative)."""
    totals = LedgerEntry.objects.filter(organization=organization, kind=EntryKind.USAGE).aggregate(
        count=Count("pk"), total=Sum("amount")
    )
    return totals["count"], quantize_usd(totals["total"] or Decimal(0))
