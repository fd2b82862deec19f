"""Billing: Stripe customers and payments, the raw Stripe events, top-ups, auto-recharge and
low-balance settings, and the invoices built from metered usage.

Every money column is USD with 10 decimal places (`DecimalField(20, 10)`), like the ledger; the
only integers of cents are amounts exchanged with Stripe (fields named `*_cents`).
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from apps.tenants.models import Organization


def usd_field(help_text: str, **options: object) -> models.DecimalField:
    """A money column: USD, 10 decimal places."""
    return models.DecimalField(
        max_digits=20, decimal_places=10, help_text=f"USD, 10 decimal places. {help_text}",
        **options,
    )  # fmt: skip


class BillingProfile(models.Model):
    """An organization's billing state: its Stripe customer, the saved card, and the
    auto-recharge and low-balance settings with their "armed" flags (armed = the next fall
    below the threshold is a new crossing)."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.PROTECT, related_name="billing_profile"
    )
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    payment_method_id = models.CharField(
        max_length=255, blank=True, default="", help_text="Card saved for off-session charges."
    )
    card_label = models.CharField(max_length=64, blank=True, default="")
    auto_recharge_enabled = models.BooleanField(default=False)
    auto_recharge_threshold = usd_field(
        "Recharge when the balance falls below this.", default=Decimal(0)
    )
    auto_recharge_amount = usd_field(
        "How much one recharge adds (whole cents).", default=Decimal(0)
    )
    auto_recharge_armed = models.BooleanField(default=True)
    auto_recharge_crossings = models.PositiveIntegerField(
        default=0, help_text="Crossings claimed so far; numbers the recharge attempts."
    )
    auto_recharge_disabled_reason = models.TextField(blank=True, default="")
    low_balance_threshold = usd_field("Email the owners below this; empty: never.", null=True)
    low_balance_armed = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~models.Q(stripe_customer_id=""),
                name="billing_one_org_per_customer",
            ),
            models.CheckConstraint(
                condition=models.Q(auto_recharge_enabled=False)
                | (models.Q(auto_recharge_amount__gt=0) & models.Q(auto_recharge_threshold__gte=0)),
                name="billing_auto_recharge_sane",
            ),
            models.CheckConstraint(
                condition=models.Q(low_balance_threshold__isnull=True)
                | models.Q(low_balance_threshold__gte=0),
                name="billing_low_balance_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"billing of org {self.organization_id}"

    @property
    def has_card(self) -> bool:
        return bool(self.payment_method_id)


class TopUpSource(models.TextChoices):
    CHECKOUT = "checkout", "Stripe Checkout"
    AUTO_RECHARGE = "auto_recharge", "Auto-recharge (saved card, off-session)"


class TopUpStatus(models.TextChoices):
    PENDING = "pending", "Waiting for payment"
    PAID = "paid", "Paid and credited"
    FAILED = "failed", "Declined or failed"


class TopUp(models.Model):
    """One purchase of credits: a Checkout Session the owner was sent to, or an off-session
    charge of the saved card. The credit itself is a ledger entry keyed by the Stripe id."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16, choices=TopUpSource.choices)
    status = models.CharField(
        max_length=8, choices=TopUpStatus.choices, default=TopUpStatus.PENDING
    )
    amount = usd_field("What the organization pays and receives.")
    currency = models.CharField(max_length=3)
    save_card = models.BooleanField(default=False)
    crossing = models.PositiveIntegerField(
        null=True, blank=True, help_text="Auto-recharge: the crossing this attempt belongs to."
    )
    stripe_checkout_session_id = models.CharField(max_length=255, blank=True, default="")
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(db_default=Now())
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"], name="topup_org_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_checkout_session_id"],
                condition=~models.Q(stripe_checkout_session_id=""),
                name="topup_unique_checkout_session",
            ),
            models.UniqueConstraint(
                fields=["stripe_payment_intent_id"],
                condition=~models.Q(stripe_payment_intent_id=""),
                name="topup_unique_payment_intent",
            ),
            # The claim of an auto-recharge: one attempt per crossing, whoever races.
            models.UniqueConstraint(
                fields=["organization", "crossing"],
                condition=models.Q(source="auto_recharge"),
                name="topup_one_recharge_per_crossing",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="topup_positive"),
        ]

    def __str__(self) -> str:
        return f"top-up {self.pk} of {self.amount} USD for org {self.organization_id}"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", "Requested, Stripe has not answered yet"
    SUCCEEDED = "succeeded", "Refunded (ledger debited)"
    PENDING = "pending", "Accepted by Stripe, waiting for the bank (ledger debited)"
    FAILED = "failed", "Refused by Stripe (nothing changed)"


class TopUpRefund(models.Model):
    """An operator's refund of (part of) a paid top-up through Stripe.

    The row is written before Stripe is called and carries the idempotency key of that call,
    so a retry after a timeout re-sends the same request and Stripe refunds once. The ledger
    debit is the same entry the `charge.refunded` webhook would post (keyed by the charge and
    its cumulative refunded amount), so whichever comes first posts it and the other adds
    nothing.
    """

    topup = models.ForeignKey(TopUp, on_delete=models.PROTECT, related_name="refunds")
    amount = usd_field("Given back to the card (whole cents).")
    reason = models.TextField()
    status = models.CharField(
        max_length=10, choices=RefundStatus.choices, default=RefundStatus.REQUESTED
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    stripe_refund_id = models.CharField(max_length=255, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(db_default=Now())
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=Decimal(0)), name="topup_refund_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"refund of {self.amount} USD of top-up {self.topup_id}"


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received, not applied yet"
    PROCESSED = "processed", "Applied"
    IGNORED = "ignored", "Recorded; not a type the platform handles"
    FAILED = "failed", "Could not be applied (see error)"


class StripeEvent(models.Model):
    """A webhook event exactly as Stripe sent it, stored before anything is done with it.
    The unique event id makes every redelivery a no-op."""

    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    payload = models.TextField(help_text="The raw request body.")
    status = models.CharField(
        max_length=9, choices=EventStatus.choices, default=EventStatus.RECEIVED
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "received_at"], name="stripe_event_status")]
        constraints = [
            models.UniqueConstraint(fields=["event_id"], name="stripe_event_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.status})"


class InvoiceKind(models.TextChoices):
    STATEMENT = "statement", "Statement (prepaid: paid from credits)"
    INVOICE = "invoice", "Invoice (post-paid: collected through Stripe)"


class StripeInvoiceStatus(models.TextChoices):
    NOT_NEEDED = "not_needed", "Not sent to Stripe"
    PENDING = "pending", "To be created in Stripe"
    DRAFT = "draft", "Draft in Stripe"
    FINALIZED = "finalized", "Finalized in Stripe"
    SENT = "sent", "Sent by Stripe"
    PAID = "paid", "Paid"


class DocumentSeries(models.Model):
    """A counter of document numbers, locked (SELECT … FOR UPDATE) while a number is taken in
    the transaction that stores the document: numbers are sequential, without gaps, and never
    reused (a rolled-back transaction gives its number back)."""

    name = models.CharField(max_length=32, primary_key=True)
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.last_value}"


class Invoice(models.Model):
    """One closed billing period of one organization. Issued invoices are immutable (a
    PostgreSQL trigger refuses changes to everything but the Stripe and payment status);
    corrections are credit notes."""

    number = models.CharField(max_length=32)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=9, choices=InvoiceKind.choices)
    customer_name = models.CharField(max_length=200, help_text="The organization at issue time.")
    period_start = models.DateTimeField(help_text="Inclusive.")
    period_end = models.DateTimeField(help_text="Exclusive.")
    issued_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    total = usd_field("Sum of the lines: the exact cost of the period's usage.")
    total_cents = models.BigIntegerField(help_text="The total rounded half-up to cents.")
    request_count = models.PositiveBigIntegerField()
    topups_total = usd_field("Statements: credits bought during the period.")
    stripe_status = models.CharField(max_length=10, choices=StripeInvoiceStatus.choices)
    stripe_invoice_id = models.CharField(max_length=255, blank=True, default="")
    stripe_lines_pushed = models.PositiveIntegerField(default=0)
    stripe_hosted_url = models.URLField(max_length=500, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "period_start"], name="invoice_org_period")]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="invoice_unique_number"),
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="invoice_one_per_org_period"
            ),
            models.UniqueConstraint(
                fields=["stripe_invoice_id"],
                condition=~models.Q(stripe_invoice_id=""),
                name="invoice_unique_stripe_id",
            ),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="invoice_total_sane"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_statement(self) -> bool:
        return self.kind == InvoiceKind.STATEMENT


class InvoiceLine(models.Model):
    """Usage of one model at one price pair during the invoice's period. Immutable."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField()
    model = models.CharField(max_length=128)
    input_price_per_mtok = usd_field("Per million input tokens.")
    output_price_per_mtok = usd_field("Per million output tokens.")
    requests = models.PositiveBigIntegerField()
    input_tokens = models.PositiveBigIntegerField()
    output_tokens = models.PositiveBigIntegerField()
    amount = usd_field("Sum of the charged cost of the requests.")
    amount_cents = models.BigIntegerField(help_text="This line's share of total_cents.")

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}/{self.position} {self.model}"


class PeriodClose(models.Model):
    """The record that an organization's billing period is closed (with or without an invoice):
    closing it again finds this row and does nothing."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    invoice = models.OneToOneField(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="close"
    )
    closed_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="one_close_per_org_period"
            ),
        ]

    def __str__(self) -> str:
        return f"org {self.organization_id} closed {self.period_start:%Y-%m-%d}"


class CreditNote(models.Model):
    """A correction of an issued invoice: its own number, an amount given back, and the
    ledger adjustment that gave it. Immutable."""

    number = models.CharField(max_length=32)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    amount = usd_field("Given back to the organization.")
    reason = models.TextField()
    issued_at = models.DateTimeField(db_default=Now())
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["number"], name="credit_note_unique_number"),
            models.CheckConstraint(
                condition=models.Q(amount__gt=Decimal(0)), name="credit_note_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class DiscrepancyCheck(models.TextChoices):
    LINES = "lines", "Invoice total differs from the sum of its lines (USD)"
    CENTS = "cents", "Cents of the lines differ from the invoice's cents"
    USAGE_ROWS = "usage_rows", "Usage rows of the period differ from the invoice total (USD)"
    LEDGER = "ledger", "Usage debits in the ledger differ from the invoice total (USD)"


class InvoiceDiscrepancy(models.Model):
    """A mismatch the invoice reconciliation found in a closed period, for an operator to look
    at. One open row per period and check; seeing it again updates it. Nothing is corrected."""

    period_close = models.ForeignKey(PeriodClose, on_delete=models.PROTECT, related_name="+")
    check_name = models.CharField(max_length=10, choices=DiscrepancyCheck.choices)
    expected = usd_field("What the invoice says.")
    actual = usd_field("What was found.")
    detected_at = models.DateTimeField(db_default=Now())
    last_seen_at = models.DateTimeField(db_default=Now())
    times_seen = models.PositiveIntegerField(default=1)
    resolved = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "invoice discrepancies"
        constraints = [
            models.UniqueConstraint(
                fields=["period_close", "check_name"],
                condition=models.Q(resolved=False),
                name="one_open_discrepancy_per_check",
            )
        ]

    def __str__(self) -> str:
        return f"{self.check_name} of close {self.period_close_id}"


class BillingChange(models.Model):
    """Audit trail of billing settings: who changed what, from which values to which."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=254)
    action = models.CharField(max_length=64)
    old_values = models.JSONField(default=dict)
    new_values = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.action} on org {self.organization_id} by {self.actor_label}"
