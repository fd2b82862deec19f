"""The audit trail in the admin: read-only, searchable, filterable by area and date."""

import json

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from apps.audit.models import AuditEntry
from apps.backoffice.read_only import ReadOnlyModelAdmin


class AreaFilter(admin.SimpleListFilter):
    """What the action touched: the first part of its name ("ledger.grant_credits")."""

    title = "area"
    parameter_name = "area"
    AREAS = (
        ("ledger", "Money"),
        ("tenants", "Tenants"),
        ("keys", "API keys"),
        ("catalog", "Catalog"),
        ("limits", "Plans and limits"),
        ("accounts", "Staff and users"),
        ("billing", "Billing"),
        ("api", "Management API tokens"),
    )

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> tuple:
        return self.AREAS

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(action__startswith=f"{value}.") if value else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "actor_label", "action", "target", "reason")
    list_filter = (AreaFilter, "created_at")
    search_fields = ("actor_label", "action", "target_repr", "=target_id", "reason")
    ordering = ("-created_at", "-pk")
    fields = (
        "created_at",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "reason",
        "before_json",
        "after_json",
    )
    readonly_fields = fields

    @admin.display(description="target")
    def target(self, entry: AuditEntry) -> str:
        return f"{entry.target_type} #{entry.target_id} {entry.target_repr}"

    @admin.display(description="before")
    def before_json(self, entry: AuditEntry) -> str:
        return _pretty(entry.before)

    @admin.display(description="after")
    def after_json(self, entry: AuditEntry) -> str:
        return _pretty(entry.after)


def _pretty(value: object) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))
