"""Admin views of billing for operators: read-only records, plus the money actions of finance —
refunding a top-up through Stripe, retrying a failed Stripe event, resolving a discrepancy —
each checked against its operator permission and written to the audit log."""

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from apps.audit.audited_admin import has_operator_permission, require_operator_permission
from apps.audit.services import record_audit
from apps.backoffice.action_page import action_page
from apps.backoffice.forms import RefundTopUpForm
from apps.billing import webhooks
from apps.billing.errors import BillingRefused
from apps.billing.models import (
    BillingChange,
    BillingProfile,
    CreditNote,
    EventStatus,
    Invoice,
    InvoiceDiscrepancy,
    InvoiceLine,
    PeriodClose,
    RefundStatus,
    StripeEvent,
    TopUp,
    TopUpRefund,
)
from apps.billing.refunds import refund_topup_as_staff, refundable_amount, send_topup_refund
from apps.billing.stripe_gateway import StripeNotConfigured, StripeUnavailable
from apps.ledger.money import format_usd

STRIPE_UNREACHABLE = (
    "Stripe could not be reached; nothing changed yet. Confirm again: the same request is "
    "re-sent, and Stripe refunds only once."
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
        """Re-applying money events is for finance (and superusers)."""
        return has_operator_permission(request, "retry_stripe_event")

    @admin.action(description="Retry the selected failed events", permissions=["retry"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        outcomes = []
        for event in queryset.filter(status=EventStatus.FAILED):
            outcome = webhooks.reapply_event(event.pk)
            record_audit(
                actor=request.user,
                action="billing.retry_stripe_event",
                target=event,
                before={"status": EventStatus.FAILED},
                after={"status": outcome},
            )
            outcomes.append(outcome)
        messages.info(request, f"Retried {len(outcomes)} events: {', '.join(outcomes) or '-'}")


class TopUpRefundInline(admin.TabularInline):
    model = TopUpRefund
    extra = 0
    can_delete = False
    fields = ["amount", "status", "stripe_refund_id", "requested_by", "requested_at", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ["pk", "organization", "source", "status", "amount", "created_at", "paid_at"]
    list_filter = ["source", "status"]
    list_select_related = ["organization"]
    search_fields = ["stripe_checkout_session_id", "stripe_payment_intent_id"]
    inlines = [TopUpRefundInline]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {**(extra_context or {}), "can_refund": self._can_refund(request)}
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        refund = self.admin_site.admin_view(self.refund_view)
        return [
            path("<path:object_id>/refund/", refund, name="billing_topup_refund"),
            *super().get_urls(),
        ]

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Refund (part of) the top-up to its card: a Stripe refund, a ledger entry naming the
        staff user, an audit entry."""
        require_operator_permission(request, "refund_payment")
        topup = self.get_object(request, object_id)
        if topup is None:
            raise Http404("No such top-up.")
        form = RefundTopUpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = refund_topup_as_staff(
                    topup,
                    form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except (BillingRefused, StripeNotConfigured) as error:
                form.add_error(None, str(error))
            except StripeUnavailable:
                form.add_error(None, STRIPE_UNREACHABLE)
            else:
                self.message_user(
                    request,
                    f"Refund {refund.stripe_refund_id} of {format_usd(refund.amount)} USD: "
                    f"{refund.get_status_display()}.",
                )
                return HttpResponseRedirect(reverse("admin:billing_topup_change", args=[topup.pk]))
        note = (
            f"Paid {format_usd(topup.amount)} USD; {format_usd(refundable_amount(topup))} USD left "
            "to refund. The money goes back to the card and the credits leave the balance."
        )
        return action_page(self, request, topup, form, "Refund through Stripe", note=note)

    def _can_refund(self, request: HttpRequest) -> bool:
        return has_operator_permission(request, "refund_payment")


@admin.register(TopUpRefund)
class TopUpRefundAdmin(ReadOnlyAdmin):
    list_display = ["pk", "topup", "amount", "status", "stripe_refund_id", "requested_at"]
    list_filter = ["status"]
    list_select_related = ["topup"]
    search_fields = ["stripe_refund_id", "topup__stripe_payment_intent_id"]
    actions = ["send_again"]

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return has_operator_permission(request, "refund_payment")

    @admin.action(description="Send the selected unanswered refunds again", permissions=["refund"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[TopUpRefund]) -> None:
        sent = 0
        for refund in queryset.filter(status=RefundStatus.REQUESTED).select_related("topup"):
            try:
                send_topup_refund(refund, actor=request.user)
            except (BillingRefused, StripeUnavailable, StripeNotConfigured) as error:
                messages.error(request, f"{refund}: {error}")
            else:
                sent += 1
        messages.info(request, f"Sent {sent} refund(s).")


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
        "resolved",  # changed only by the audited action below
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Mark the selected discrepancies resolved", permissions=["change"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet[InvoiceDiscrepancy]) -> None:
        with transaction.atomic():
            for discrepancy in queryset.select_for_update().filter(resolved=False):
                discrepancy.resolved = True
                discrepancy.save(update_fields=["resolved"])
                record_audit(
                    actor=request.user,
                    action="billing.resolve_discrepancy",
                    target=discrepancy,
                    before={"resolved": False},
                    after={"resolved": True},
                )


@admin.register(BillingChange)
class BillingChangeAdmin(ReadOnlyAdmin):
    list_display = ["organization", "action", "actor_label", "created_at"]
    list_filter = ["action"]
