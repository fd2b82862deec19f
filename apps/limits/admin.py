"""Plans in the admin. A change of a plan's limits reaches every gateway worker from the next
request of each organization on it (their tenant epochs are bumped on commit)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.forms import ModelForm
from django.http import HttpRequest

from apps.audit.audited_admin import AuditedModelAdmin
from apps.backoffice.services import PLAN_LIMIT_FIELDS, apply_plan_limits
from apps.limits.models import Plan
from apps.limits.services import InvalidLimitError, check_limits
from apps.tenants.models import Organization


class PlanForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = ("name", "rpm", "tpm", "max_concurrent", "is_default")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            check_limits(**{name: cleaned.get(name) for name in PLAN_LIMIT_FIELDS})
        except InvalidLimitError as error:
            raise forms.ValidationError(str(error)) from None
        return cleaned


@admin.register(Plan)
class PlanAdmin(AuditedModelAdmin):
    form = PlanForm
    list_display = ("name", "rpm", "tpm", "max_concurrent", "is_default", "organizations")
    ordering = ("name",)
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        on_plan = (
            Organization.objects.filter(plan=OuterRef("pk"))
            .order_by()
            .values("plan")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(organization_count=Coalesce(Subquery(on_plan), Value(0)))
        )

    @admin.display(description="organizations")
    def organizations(self, plan: Plan) -> int:
        return plan.organization_count  # type: ignore[attr-defined]

    def save_audited(self, request: HttpRequest, obj: Plan, form: ModelForm, change: bool) -> None:
        """Keep exactly one default plan, then tell the gateway if the limits moved."""
        before = {name: form.initial.get(name) for name in PLAN_LIMIT_FIELDS} if change else {}
        if obj.is_default:
            Plan.objects.filter(is_default=True).exclude(pk=obj.pk).update(is_default=False)
        super().save_audited(request, obj, form, change)
        if change:
            apply_plan_limits(obj, before)
