"""Absolute links to billing pages (for emails and Stripe's return URLs), built on
PUBLIC_BASE_URL. The dashboard routes are included at /billing/ (apps/billing/dashboard_urls.py);
until they are, links point at that path anyway."""

from django.urls import NoReverseMatch, reverse

from apps.billing.conf import text_setting


def billing_link(name: str, organization_id: int) -> str:
    """The absolute URL of dashboard page `name` of the organization."""
    try:
        path = reverse(f"billing_dashboard:{name}", args=[organization_id])
    except NoReverseMatch:
        path = f"/billing/{organization_id}/"
    return text_setting("PUBLIC_BASE_URL").rstrip("/") + path
