"""API keys in the admin: recognisable by prefix, never by hash; revoked, never deleted.

Keys are created by tenants (the secret is shown once, to them), so there is no add form.
"""

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.audited_admin import AuditedModelAdmin, has_operator_permission
from apps.backoffice.list_filters import OrganizationFilter
from apps.backoffice.services import revoke_key_as_staff
from apps.keys.models import APIKey
from apps.keys.services import set_key_limits

HASH_SHOWN = 8
LIMIT_FIELDS = ("rpm", "tpm", "max_concurrent")


class KeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> tuple:
        return (("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "active":
            not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
            return queryset.filter(not_expired, revoked_at__isnull=True)
        return queryset


@admin.register(APIKey)
class APIKeyAdmin(AuditedModelAdmin):
    list_display = (
        "prefix",
        "name",
        "organization",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_select_related = ("organization", "created_by")
    list_filter = (OrganizationFilter, KeyStateFilter, "created_at")
    search_fields = ("^prefix", "name", "organization__name")
    search_help_text = "Key prefix, key name or organization name."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    ordering = ("-created_at", "-pk")
    fields = (
        "organization",
        "name",
        "prefix",
        "hash_fingerprint",
        "hash_version",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "rpm",
        "tpm",
        "max_concurrent",
        "allowed_models",
    )
    readonly_fields = tuple(f for f in fields if f not in ("name", *LIMIT_FIELDS))
    actions = ("revoke_selected",)
    audit_fields = ("name", *LIMIT_FIELDS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: usage history keeps pointing at the key

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return has_operator_permission(request, "revoke_api_key")

    @admin.display(description="hashed secret")
    def hash_fingerprint(self, key: APIKey) -> str:
        return f"{key.hashed_secret[:HASH_SHOWN]}…"

    def save_audited(
        self, request: HttpRequest, obj: APIKey, form: ModelForm, change: bool
    ) -> None:
        """Limits go through set_key_limits (the gateway reloads the key); the name is plain."""
        limits = {name: getattr(obj, name) or None for name in LIMIT_FIELDS}
        APIKey.objects.filter(pk=obj.pk).update(name=obj.name)
        set_key_limits(obj, **limits)

    @admin.action(description="Revoke selected keys (refused at once)", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = [key for key in queryset if revoke_key_as_staff(key, actor=request.user)]
        self.message_user(request, f"Revoked {len(revoked)} key(s).")
