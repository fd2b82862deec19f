"""The catalog in the admin: providers (their upstream key is write-only), models with their
deployments and price history, and the enable / disable / default actions. Every change is
audited; a price change also appends a ModelPrice row."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from apps.audit.audited_admin import AuditedModelAdmin, audit_each, mask_secret
from apps.audit.services import record_audit
from apps.backoffice.read_only import ReadOnlyModelAdmin
from apps.catalog.models import Deployment, Model, ModelPrice, Provider
from apps.catalog.services import save_model, set_default_model, set_enabled


class EnableDisableActions(AuditedModelAdmin):
    """The enable and disable actions, audited one entry per row that changed."""

    actions = ("enable_selected", "disable_selected")

    @admin.action(description="Enable selected", permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description="Disable selected", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet, *, enabled: bool) -> None:
        with transaction.atomic():
            changed = set_enabled(queryset, enabled)
            verb = "enable" if enabled else "disable"
            audit_each(
                request,
                changed,
                self.audit_action(verb),
                {"enabled": not enabled},
                {"enabled": enabled},
            )
        self.message_user(request, f"{verb.capitalize()}d {len(changed)} row(s).")


class ProviderForm(forms.ModelForm):
    """The upstream key is write-only: never rendered back; blank keeps the stored one."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: never shown again. Leave blank to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored key")
    base_url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = Provider
        fields = (
            "name",
            "base_url",
            "api_key",
            "clear_api_key",
            "api_key_env",
            "timeout_s",
            "enabled",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("clear_api_key"):
            cleaned["api_key"] = ""
        elif not cleaned.get("api_key"):
            cleaned["api_key"] = self.instance.api_key
        if cleaned["api_key"] and cleaned.get("api_key_env"):
            raise forms.ValidationError(
                "Give either a stored key or an environment variable, not both."
            )
        return cleaned


@admin.register(Provider)
class ProviderAdmin(EnableDisableActions):
    form = ProviderForm
    list_display = ("name", "base_url", "api_key_masked", "api_key_env", "timeout_s", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name", "base_url")
    ordering = ("name",)
    audit_masks = {"api_key": mask_secret}

    @admin.display(description="stored key")
    def api_key_masked(self, provider: Provider) -> str:
        return mask_secret(provider.api_key) or "-"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disable instead: deployments and usage history refer to it


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 0
    fields = ("provider", "upstream_model", "weight", "enabled")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("provider")


class ModelPriceInline(admin.TabularInline):
    """The latest prices first; the full history is under "Model prices"."""

    model = ModelPrice
    extra = 0
    fields = ("effective_from", "input_price_per_mtok", "output_price_per_mtok", "changed_label")
    readonly_fields = fields
    ordering = ("-effective_from", "-pk")
    verbose_name_plural = "price history (latest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Model)
class CatalogModelAdmin(EnableDisableActions):
    list_display = (
        "name",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "context_window",
        "max_output_tokens",
        "enabled",
        "is_default",
        "updated_at",
    )
    list_filter = ("enabled",)
    search_fields = ("name",)
    ordering = ("name",)
    fields = (
        "name",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "context_window",
        "max_output_tokens",
        "enabled",
        "is_default",
        "updated_at",
    )
    readonly_fields = ("is_default", "updated_at")
    inlines = (DeploymentInline, ModelPriceInline)
    actions = ("enable_selected", "disable_selected", "make_default")
    audit_fields = (
        "name",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "context_window",
        "max_output_tokens",
        "enabled",
        "is_default",
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disable instead: the price history is kept

    def save_audited(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        save_model(obj, actor=request.user)

    @admin.action(description="Make the selected model the default", permissions=["change"])
    def make_default(self, request: HttpRequest, queryset: QuerySet) -> None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Select exactly one model.", messages.ERROR)
            return
        model = chosen[0]
        with transaction.atomic():
            previous = set_default_model(model)
            record_audit(
                actor=request.user,
                action="catalog.model.make_default",
                target=model,
                before={"default": previous.name if previous else None},
                after={"default": model.name},
            )
        self.message_user(request, f"{model} is the default model.")


@admin.register(Deployment)
class DeploymentAdmin(EnableDisableActions):
    list_display = ("__str__", "model", "provider", "upstream_model", "weight", "enabled")
    list_select_related = ("model", "provider")
    list_filter = ("enabled", "provider")
    search_fields = ("model__name", "upstream_model", "provider__name")
    ordering = ("model__name", "pk")


@admin.register(ModelPrice)
class ModelPriceAdmin(ReadOnlyModelAdmin):
    list_display = (
        "model",
        "effective_from",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "changed_label",
    )
    list_select_related = ("model",)
    list_filter = ("model",)
    search_fields = ("model__name", "changed_label")
    ordering = ("-effective_from", "-pk")
