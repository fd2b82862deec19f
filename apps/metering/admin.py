"""The usage explorer: read-only usage rows with filters and totals, one request's cost
explained, and the operations overview page. Built for tables of millions of rows: the page
count and the totals come from one aggregate query, rows are joined to their organization in
the page query, keys come in one more query."""

from decimal import Decimal
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from apps.audit.audited_admin import require_operator_permission
from apps.backoffice.list_filters import KeyFilter, OrganizationFilter
from apps.backoffice.overview import overview
from apps.backoffice.read_only import ReadOnlyModelAdmin
from apps.backoffice.usage_explanation import explain_usage
from apps.catalog.models import Model as CatalogModel
from apps.ledger.money import format_usd
from apps.metering.models import UsageRecord


class TotalsPaginator(Paginator):
    """Counts the filtered rows and sums their tokens and cost in the same query.

    Django needs the count to paginate; asking for the totals in that query costs nothing
    more, so the totals above the list never scan the table a second time.
    """

    @cached_property
    def totals(self) -> dict[str, Any]:
        """Rows, prompt and completion tokens, and cost (USD, as "12.3400000000")."""
        totals = self.object_list.aggregate(
            count=Count("pk"),
            prompt_tokens=Sum("prompt_tokens", default=0),
            completion_tokens=Sum("completion_tokens", default=0),
            cost=Sum("cost", default=Decimal(0)),
        )
        totals["cost"] = format_usd(totals["cost"])
        return totals

    @cached_property
    def count(self) -> int:
        return self.totals["count"]


class ModelNameFilter(admin.SimpleListFilter):
    """Public model names from the catalog (a small table), not a DISTINCT over usage."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        names = list(CatalogModel.objects.order_by("name").values_list("name", flat=True))
        if self.value() and self.value() not in names:
            names.append(self.value())  # a filter with no choices would be silently ignored
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyModelAdmin):
    list_display = (
        "started_at",
        "request_id",
        "organization",
        "key_prefix",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "status",
        "latency_ms",
    )
    list_select_related = ("organization",)
    list_filter = (OrganizationFilter, KeyFilter, ModelNameFilter, "status", "stream", "started_at")
    search_fields = ("request_id",)  # matched exactly: see get_search_results
    search_help_text = "Exact request id (the x-request-id the client received)."
    paginator = TotalsPaginator
    list_per_page = 100
    # Newest first by id (ingest order): a backward primary-key scan on any table size, where
    # ordering by started_at would sort every matching row. Click a column to sort by it.
    ordering = ("-pk",)
    change_list_template = "admin/metering/usagerecord/change_list.html"
    change_form_template = "admin/metering/usagerecord/change_form.html"
    fields = (
        "request_id",
        "organization",
        "key",
        "model",
        "deployment_id",
        "status",
        "stream",
        "prompt_tokens",
        "completion_tokens",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "cost",
        "started_at",
        "finished_at",
        "latency_ms",
        "ttft_ms",
        "ingested_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The key by a separate query: a JOIN would hide rows whose key was deleted.
        return super().get_queryset(request).prefetch_related("key")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """An exact request id, through its unique index (Django's "=" would be iexact)."""
        term = search_term.strip()
        return (queryset.filter(request_id=term) if term else queryset), False

    @admin.display(description="key")
    def key_prefix(self, record: UsageRecord) -> str:
        return record.key.prefix if record.key is not None else f"#{record.key_id}"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["usage_totals"] = context["cl"].paginator.totals
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        record = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if record is not None:
            context["explanation"] = explain_usage(record)
            context["record"] = record
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.overview_view)
        return [path("overview/", view, name="metering_overview"), *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> TemplateResponse:
        """Requests, tokens, revenue and errors for today, 7 and 30 days; spend per model, top
        organizations and upstream health (apps/backoffice/overview.py)."""
        require_operator_permission(request, "view_overview")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Operations overview",
            "overview": overview(),
        }
        return TemplateResponse(request, "admin/metering/overview.html", context)
