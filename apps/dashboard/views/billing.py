"""Billing: the balance and the ledger history, with links to the billing app's pages
(buy credits, settings, invoices) once it provides them."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from apps.dashboard.access import org_page
from apps.dashboard.selectors import ledger_history
from apps.ledger.selectors import cached_balance
from apps.tenants.models import Membership

PAGE_SIZE = 50

# Pages of the billing app (apps/billing/dashboard_urls.py, each taking `org_id`); the page
# links to those that are mounted. See docs/dashboard.md.
BILLING_LINKS = (
    ("billing_dashboard:buy", "Buy credits"),
    ("billing_dashboard:overview", "Auto-recharge and low-balance alerts"),
    ("billing_dashboard:invoices", "Invoices"),
)


def billing_links(org_id: int) -> list[tuple[str, str]]:
    """(url, label) of each billing page that exists."""
    links = []
    for name, label in BILLING_LINKS:
        try:
            links.append((reverse(name, kwargs={"org_id": org_id}), label))
        except NoReverseMatch:
            continue
    return links


@org_page()
def billing(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    page = Paginator(ledger_history(organization), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "balance": cached_balance(organization),
        "page": page,
        "links": billing_links(organization.pk) if membership.can_manage else [],
    }
    return render(request, "dashboard/billing.html", context)
