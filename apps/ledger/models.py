"""The money ledger: append-only entries, a cached balance per organization, and the issues
the reconciler found. Amounts are USD with 10 decimal places (see apps/ledger/money.py)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from apps.tenants.models import Organization


class EntryKind(models.TextChoices):
    GRANT = "grant", "Grant (free credits)"
    TOPUP = "topup", "Top-up (paid credits)"
    USAGE = "usage", "Usage (a metered request)"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment (operator correction)"
    INVOICE_SETTLEMENT = "invoice_settlement", "Invoice settlement"
    DISPUTE = "dispute", "Dispute (chargeback)"


# Kinds whose sign is fixed; the others may go either way.
CREDIT_KINDS = (EntryKind.GRANT, EntryKind.TOPUP)
DEBIT_KINDS = (EntryKind.USAGE,)


class LedgerEntry(models.Model):
    """One change of an organization's money. Never updated or deleted: a mistake is undone by
    a new entry. The balance is the sum of `amount` over an organization's entries."""

    # Covered by the (organization, created_at) index, so no single-column index.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, db_index=False, related_name="ledger_entries"
    )
    amount = models.DecimalField(
        max_digits=20, decimal_places=10, help_text="USD, 10 decimal places; negative = debit."
    )
    kind = models.CharField(max_length=24, choices=EntryKind.choices)
    idempotency_key = models.CharField(
        max_length=200, help_text="Unique: posting the same key again changes nothing."
    )
    # PROTECT keeps the row immutable (SET_NULL would rewrite it); actor_label keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,  # partial index below: usage rows (no actor) never touch it
        related_name="+",
    )
    actor_label = models.CharField(
        max_length=254, help_text='Who posted it: "system:ingest", "cli" or a user\'s email.'
    )
    memo = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), help_text="When it was posted.")

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["organization", "created_at"], name="ledger_org_time"),
            models.Index(
                fields=["actor"], condition=models.Q(actor__isnull=False), name="ledger_actor"
            ),
        ]
        constraints = [
            # A constraint rather than unique=True: no extra LIKE index on every insert.
            models.UniqueConstraint(fields=["idempotency_key"], name="ledger_idempotency_key"),
            models.CheckConstraint(
                condition=~models.Q(amount=Decimal(0)), name="ledger_entry_amount_not_zero"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=EntryKind.values), name="ledger_entry_kind_known"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind__in=CREDIT_KINDS) | models.Q(amount__gt=0),
                name="ledger_credit_kinds_positive",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind__in=DEBIT_KINDS) | models.Q(amount__lt=0),
                name="ledger_debit_kinds_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} USD for org {self.organization_id}"


class Balance(models.Model):
    """The sum of an organization's ledger entries, kept up to date in the same transaction as
    each entry (F() increments). A cache: the reconciler checks it against the sum."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.PROTECT, related_name="balance"
    )
    amount = models.DecimalField(
        max_digits=20, decimal_places=10, default=Decimal(0), help_text="USD, 10 decimal places."
    )
    updated_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.amount} USD for org {self.organization_id}"


class IssueKind(models.TextChoices):
    CACHED_BALANCE = "cached_balance", "Cached balance differs from the ledger sum (USD)"
    USAGE_COUNT = "usage_count", "Charged usage rows differ from usage entries (count)"
    USAGE_COST = "usage_cost", "Usage row costs differ from usage entries (USD)"
    HOT_COUNTER = "hot_counter", "Redis credit differs from ledger - holds - pending (USD)"


class ReconciliationIssue(models.Model):
    """A mismatch the reconciler found, for an operator to investigate. Nothing is corrected
    automatically. One open issue per organization and kind; seeing it again updates it."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="reconciliation_issues"
    )
    kind = models.CharField(max_length=24, choices=IssueKind.choices)
    expected = models.DecimalField(
        max_digits=30, decimal_places=10, help_text="USD, or a count for usage_count."
    )
    actual = models.DecimalField(
        max_digits=30, decimal_places=10, help_text="USD, or a count for usage_count."
    )
    detected_at = models.DateTimeField(db_default=Now())
    last_seen_at = models.DateTimeField(db_default=Now())
    times_seen = models.PositiveIntegerField(default=1)
    resolved = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind"],
                condition=models.Q(resolved=False),
                name="one_open_issue_per_org_and_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for org {self.organization_id}: {self.expected} != {self.actual}"
