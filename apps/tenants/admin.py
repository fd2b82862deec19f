"""Organizations in the admin: search, one page with everything about a tenant, and the
operator actions on it (credits, plan, credit limit, suspension), each audited."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from apps.audit.audited_admin import (
    AuditedModelAdmin,
    has_operator_permission,
    require_operator_permission,
)
from apps.backoffice.action_page import action_page
from apps.backoffice.forms import ChangePlanForm, CreditLimitForm, GrantCreditsForm, ReasonForm
from apps.backoffice.services import (
    change_plan_as_staff,
    close_due_periods_as_staff,
    grant_credits_as_staff,
)
from apps.backoffice.tenant_summary import organization_summary
from apps.ledger.money import InexactAmount, format_usd
from apps.ledger.selectors import ledger_balance
from apps.ledger.services import BelowSpendingFloor, IdempotencyConflict
from apps.tenants.models import Invitation, Membership, Organization
from apps.tenants.services import (
    create_organization,
    set_credit_limit,
    suspend_organization,
    unsuspend_organization,
)

USAGE_SUMMARY_DAYS = 30


class SuspendedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> tuple:
        return (("active", "Active"), ("suspended", "Suspended"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return queryset.filter(suspended_at__isnull=True)
        if self.value() == "suspended":
            return queryset.filter(suspended_at__isnull=False)
        return queryset


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")


class InvitationInline(admin.TabularInline):
    """Invitations are sent and revoked by the organization's owners (dashboard, API)."""

    model = Invitation
    extra = 0
    fields = ("email", "role", "status", "invited_by", "created_at", "expires_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = "invitations (managed by the organization's owners)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("invited_by")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrganizationAddForm(forms.ModelForm):
    owner_email = forms.EmailField(help_text="Created without a password if new.")

    class Meta:
        model = Organization
        fields = ("name", "plan")
        help_texts = {"plan": "Empty: the default plan."}


@admin.register(Organization)
class OrganizationAdmin(AuditedModelAdmin):
    list_display = (
        "name",
        "plan",
        "billing_mode",
        "credit_limit",
        "balance_usd",
        "status",
        "created_at",
    )
    list_select_related = ("plan",)
    list_filter = (SuspendedFilter, "billing_mode", "plan")
    search_fields = ("name", "memberships__user__email", "^api_keys__prefix")
    search_help_text = "Name, member email or API key prefix."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    ordering = ("name",)
    fields = ("name", "plan", "billing_mode", "credit_limit", "suspended_at", "created_at")
    # Plan, credit limit and suspension change only through their audited actions.
    readonly_fields = ("plan", "billing_mode", "credit_limit", "suspended_at", "created_at")
    inlines = (MembershipInline, InvitationInline)
    actions = ("suspend_selected", "unsuspend_selected")
    change_form_template = "admin/tenants/organization/change_form.html"
    audit_fields = ("name", "plan", "billing_mode", "credit_limit", "suspended_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(balance_amount=F("balance__amount"))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # tenants are suspended, never deleted (their ledger is kept)

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return has_operator_permission(request, "suspend_organization")

    @admin.display(description="balance (USD)", ordering="balance_amount")
    def balance_usd(self, organization: Organization) -> str:
        amount = getattr(organization, "balance_amount", None)
        return format_usd(amount if amount is not None else Decimal(0))

    @admin.display(description="status", ordering="suspended_at")
    def status(self, organization: Organization) -> str:
        return "suspended" if organization.suspended_at else "active"

    # --- adding: through create_organization, with its owner --------------------------------

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = OrganizationAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "plan", "owner_email") if obj is None else self.fields

    def get_inlines(self, request: HttpRequest, obj: Any) -> tuple:
        return () if obj is None else self.inlines  # the owner comes from the add form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def save_audited(
        self, request: HttpRequest, obj: Organization, form: ModelForm, change: bool
    ) -> None:
        if change:
            super().save_audited(request, obj, form, change)
            return
        created = create_organization(
            obj.name, owner_email=form.cleaned_data["owner_email"], plan=obj.plan
        )
        for field in Organization._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False

    # --- the page of one organization ----------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        organization = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if organization is not None:
            since = timezone.now() - timedelta(days=USAGE_SUMMARY_DAYS)
            context["summary"] = organization_summary(organization, since=since)
            context["summary_days"] = USAGE_SUMMARY_DAYS
            context["operator_can"] = self._operator_permissions(request)
        return super().change_view(request, object_id, form_url, context)

    def _operator_permissions(self, request: HttpRequest) -> dict[str, bool]:
        names = (
            "grant_credits",
            "rerun_billing_close",
            "change_credit_limit",
            "change_organization_plan",
            "suspend_organization",
            "revoke_api_key",
        )
        return {name: has_operator_permission(request, name) for name in names}

    # --- operator actions -----------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        def route(suffix: str, view: Any, name: str) -> URLPattern:
            wrapped = self.admin_site.admin_view(view)
            return path(f"<path:object_id>/{suffix}/", wrapped, name=f"tenants_organization_{name}")

        return [
            route("credits", self.grant_credits_view, "credits"),
            route("plan", self.change_plan_view, "plan"),
            route("credit-limit", self.credit_limit_view, "credit_limit"),
            route("suspend", self.suspend_view, "suspend"),
            route("unsuspend", self.unsuspend_view, "unsuspend"),
            route("billing-close", self.billing_close_view, "billing_close"),
            *super().get_urls(),
        ]

    def grant_credits_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Grant or deduct credits with a reason: a ledger entry and an audit entry."""
        require_operator_permission(request, "grant_credits")
        organization = self._organization_or_404(request, object_id)
        form = GrantCreditsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry, created = grant_credits_as_staff(
                    organization,
                    form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except (BelowSpendingFloor, IdempotencyConflict, InexactAmount) as error:
                form.add_error(None, str(error))
            else:
                verb = "Posted" if created else "Already posted (nothing changed):"
                self.message_user(
                    request,
                    f"{verb} {entry.kind} of {format_usd(entry.amount)} USD (entry {entry.pk}).",
                )
                return self._back_to(organization)
        note = (
            f"Balance {format_usd(ledger_balance(organization))} USD; a deduction may not take "
            f"it below {format_usd(organization.spending_floor)} USD."
        )
        return action_page(self, request, organization, form, "Grant or deduct credits", note=note)

    def change_plan_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        require_operator_permission(request, "change_organization_plan")
        organization = self._organization_or_404(request, object_id)
        form = ChangePlanForm(request.POST or None, initial={"plan": organization.plan_id})
        if request.method == "POST" and form.is_valid():
            changed = change_plan_as_staff(
                organization,
                form.cleaned_data["plan"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
            self.message_user(request, "Plan changed." if changed else "Already on that plan.")
            return self._back_to(organization)
        return action_page(self, request, organization, form, "Change plan")

    def credit_limit_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        require_operator_permission(request, "change_credit_limit")
        organization = self._organization_or_404(request, object_id)
        initial = {
            "billing_mode": organization.billing_mode,
            "credit_limit": organization.credit_limit,
        }
        form = CreditLimitForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            changed = set_credit_limit(
                organization,
                form.cleaned_data["credit_limit"],
                billing_mode=form.cleaned_data["billing_mode"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
            self.message_user(request, "Credit limit changed." if changed else "No change.")
            return self._back_to(organization)
        return action_page(self, request, organization, form, "Billing mode and credit limit")

    def suspend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._suspension_view(request, object_id, suspend=True)

    def unsuspend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._suspension_view(request, object_id, suspend=False)

    def _suspension_view(
        self, request: HttpRequest, object_id: str, *, suspend: bool
    ) -> HttpResponse:
        require_operator_permission(request, "suspend_organization")
        organization = self._organization_or_404(request, object_id)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            service = suspend_organization if suspend else unsuspend_organization
            changed = service(organization, actor=request.user, reason=form.cleaned_data["reason"])
            state = "suspended" if suspend else "active"
            self.message_user(request, f"{organization} is {state}." if changed else "No change.")
            return self._back_to(organization)
        title = "Suspend (every key gets 403)" if suspend else "Unsuspend"
        return action_page(self, request, organization, form, title)

    def billing_close_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Close the billing periods that are due (re-running a failed close; idempotent)."""
        require_operator_permission(request, "rerun_billing_close")
        organization = self._organization_or_404(request, object_id)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            closed = close_due_periods_as_staff(
                organization, actor=request.user, reason=form.cleaned_data["reason"]
            )
            self.message_user(request, f"Closed {len(closed)} billing period(s).")
            return self._back_to(organization)
        return action_page(self, request, organization, form, "Close due billing periods")

    @admin.action(description="Suspend selected organizations", permissions=["suspend"])
    def suspend_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = [org for org in queryset if suspend_organization(org, actor=request.user)]
        self.message_user(request, f"Suspended {len(done)} organization(s).")

    @admin.action(description="Unsuspend selected organizations", permissions=["suspend"])
    def unsuspend_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = [org for org in queryset if unsuspend_organization(org, actor=request.user)]
        self.message_user(request, f"Unsuspended {len(done)} organization(s).", messages.SUCCESS)

    def _organization_or_404(self, request: HttpRequest, object_id: str) -> Organization:
        organization = self.get_object(request, object_id)
        if organization is None:
            raise Http404("No such organization.")
        return organization

    def _back_to(self, organization: Organization) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:tenants_organization_change", args=[organization.pk])
        )
