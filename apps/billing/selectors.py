"""Reads of billing for pages and the API. Amounts are USD with 10 decimal places."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from apps.billing.conf import int_setting, missing_stripe_settings, topup_limits
from apps.billing.models import BillingProfile, CreditNote, Invoice, TopUp
from apps.billing.profiles import get_profile
from apps.ledger.models import LedgerEntry
from apps.ledger.selectors import cached_balance
from apps.tenants.models import Organization


@dataclass(frozen=True, slots=True)
class BillingSummary:
    """What the billing overview shows."""

    balance: Decimal
    profile: BillingProfile
    missing_settings: list[str]  # Stripe settings the operator must still set
    topup_min: Decimal
    topup_max: Decimal
    recharge_cap: int  # auto-recharges per hour at most

    @property
    def can_buy(self) -> bool:
        return not self.missing_settings


def billing_summary(organization: Organization) -> BillingSummary:
    minimum, maximum = topup_limits()
    return BillingSummary(
        balance=cached_balance(organization),
        profile=get_profile(organization.pk),
        missing_settings=missing_stripe_settings(),
        topup_min=minimum,
        topup_max=maximum,
        recharge_cap=int_setting("AUTO_RECHARGE_MAX_PER_HOUR"),
    )


def topups_of(organization: Organization) -> QuerySet[TopUp]:
    """The organization's top-ups, newest first."""
    return TopUp.objects.filter(organization=organization).order_by("-created_at", "-pk")


def ledger_history(organization: Organization) -> QuerySet[LedgerEntry]:
    """The organization's ledger entries, newest first."""
    return LedgerEntry.objects.filter(organization=organization).order_by("-created_at", "-pk")


def invoices_of(organization: Organization) -> QuerySet[Invoice]:
    """The organization's invoices and statements, newest period first."""
    return Invoice.objects.filter(organization=organization).order_by("-period_start", "-pk")


def invoice_of(organization: Organization, invoice_id: int) -> Invoice | None:
    """One invoice, only if it belongs to the organization."""
    return (
        Invoice.objects.filter(organization=organization, pk=invoice_id)
        .prefetch_related("lines", "credit_notes")
        .first()
    )


def credit_notes_of(invoice: Invoice) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(invoice=invoice).order_by("issued_at", "pk")
