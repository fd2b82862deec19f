"""The organization's overview: balance, this month, charts, recent requests, first call."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.catalog.selectors import default_model
from apps.dashboard.access import org_page
from apps.dashboard.selectors import (
    UsageFilters,
    daily_series,
    month_summary,
    recent_requests,
)
from apps.ledger.selectors import cached_balance
from apps.tenants.models import Membership


@org_page()
def overview(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    model = default_model()
    context = {
        "balance": cached_balance(organization),
        "month": month_summary(organization),
        "series": daily_series(organization, UsageFilters.last_days()),
        "recent": recent_requests(organization),
        "api_base_url": settings.PUBLIC_BASE_URL + "/v1",
        "snippet_model": model.name if model else "default",
    }
    return render(request, "dashboard/overview.html", context)
