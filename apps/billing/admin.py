"""Admin views of billing for operators: read-only records, plus retrying a failed event and
marking a discrepancy resolved."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.billing import webhooks
from apps.billing.models import (
    BillingChange,
    BillingProfile,
    CreditNote,
    EventStatus,
    Invoice,
    InvoiceDiscrepancy,
    InvoiceLine,
    PeriodClose,
    StripeEvent,
    TopUp,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records are written by services only; the admin shows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id"]
    actions = ["retry_failed"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Re-applying money events is for superusers only."""
        return bool(request.user.is_superuser)

    @admin.action(description="Retry the selected failed events", permissions=["retry"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        outcomes = [
            webhooks.reapply_event(event.pk) for event in queryset.filter(status=EventStatus.FAILED)
        ]
        messages.info(request, f"Retried {len(outcomes)} events: {', '.join(outcomes) or '-'}")


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ["pk", "organization", "source", "status", "amount", "created_at", "paid_at"]
    list_filter = ["source", "status"]
    search_fields = ["stripe_checkout_session_id", "stripe_payment_intent_id"]


@admin.register(BillingProfile)
class BillingProfileAdmin(ReadOnlyAdmin):
    list_display = [
        "organization",
        "stripe_customer_id",
        "auto_recharge_enabled",
        "auto_recharge_threshold",
        "auto_recharge_amount",
        "low_balance_threshold",
    ]
    search_fields = ["stripe_customer_id", "organization__name"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "organization", "kind", "period_start", "total", "stripe_status"]
    list_filter = ["kind", "stripe_status"]
    search_fields = ["number", "stripe_invoice_id", "organization__name"]
    inlines = [InvoiceLineInline]


@admin.register(PeriodClose)
class PeriodCloseAdmin(ReadOnlyAdmin):
    list_display = ["organization", "period_start", "period_end", "invoice", "closed_at"]


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "invoice", "amount", "issued_at"]


@admin.register(InvoiceDiscrepancy)
class InvoiceDiscrepancyAdmin(admin.ModelAdmin):
    """Operators with the change permission may only mark discrepancies resolved."""

    list_display = ["period_close", "check_name", "expected", "actual", "times_seen", "resolved"]
    list_filter = ["resolved", "check_name"]
    actions = ["mark_resolved"]
    readonly_fields = [
        "period_close",
        "check_name",
        "expected",
        "actual",
        "detected_at",
        "last_seen_at",
        "times_seen",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Mark the selected discrepancies resolved", permissions=["change"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet[InvoiceDiscrepancy]) -> None:
        queryset.update(resolved=True)


@admin.register(BillingChange)
class BillingChangeAdmin(ReadOnlyAdmin):
    list_display = ["organization", "action", "actor_label", "created_at"]
    list_filter = ["action"]
