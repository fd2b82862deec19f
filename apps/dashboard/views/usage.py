"""Usage: filter by key, model and UTC days; a table, a chart and a CSV of the same rows.

The table shows one page of rows; the CSV link carries the same query string (filters and
page), so the export is exactly the rows on screen, with exact amounts."""

import csv
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from apps.dashboard.access import org_page
from apps.dashboard.forms import UsageFilterForm
from apps.dashboard.selectors import UsageFilters, daily_series, key_names, usage_for
from apps.ledger.money import format_usd
from apps.metering.models import UsageRecord
from apps.tenants.models import Membership, Organization

PAGE_SIZE = 50
CSV_COLUMNS = (
    "started_at",
    "request_id",
    "key_id",
    "key",
    "model",
    "status",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
)


@dataclass
class UsageView:
    form: UsageFilterForm
    filters: UsageFilters
    page: Page
    key_labels: dict[int, str]


def _usage_view(request: HttpRequest, organization: Organization) -> UsageView:
    """The filters and the page of rows that both the page and the CSV show."""
    form = UsageFilterForm(request.GET or None, organization=organization)
    filters = form.filters()
    paginator = Paginator(usage_for(organization, filters), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    labels = key_names(organization, {row.key_id for row in page.object_list})
    return UsageView(form=form, filters=filters, page=page, key_labels=labels)


def _query_without_page(request: HttpRequest) -> str:
    return urlencode([(k, v) for k, v in request.GET.items() if k != "page" and v])


@org_page()
def usage(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    view = _usage_view(request, organization)
    rows = [(row, view.key_labels.get(row.key_id, f"#{row.key_id}")) for row in view.page]
    context = {
        "form": view.form,
        "filters": view.filters,
        "page": view.page,
        "rows": rows,
        "series": daily_series(organization, view.filters),
        "query": request.GET.urlencode(),
        "query_without_page": _query_without_page(request),
    }
    return render(request, "dashboard/usage.html", context)


@org_page()
def usage_csv(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The rows the usage page shows for the same query string, as CSV (exact USD)."""
    view = _usage_view(request, membership.organization)
    filename = f"usage-{view.filters.start}-{view.filters.end}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in view.page:
        writer.writerow(_csv_row(row, view.key_labels.get(row.key_id, "")))
    return response


def _csv_row(row: UsageRecord, key_label: str) -> list[object]:
    return [
        row.started_at.isoformat(),
        row.request_id,
        row.key_id,
        key_label,
        row.model,
        row.status,
        "true" if row.stream else "false",
        row.prompt_tokens,
        row.completion_tokens,
        format_usd(row.cost),
        row.latency_ms,
    ]
