"""Template tags of the dashboard's frame: the current organization and its switcher."""

from typing import Any

from django import template
from django.http import HttpRequest

from apps.dashboard.selectors import memberships_of
from apps.tenants.models import Membership

register = template.Library()


def _membership(request: HttpRequest) -> Membership | None:
    """The user's membership of the organization in the URL (`org_id`), if any.

    Dashboard views put it on the request; other apps' pages under an `org_id` URL (billing)
    get it looked up here, so they show the same navigation."""
    found = getattr(request, "membership", None)
    if found is not None or not request.user.is_authenticated:
        return found
    match = request.resolver_match
    org_id = match.kwargs.get("org_id") if match else None
    if org_id is None:
        return None
    found = (
        Membership.objects.select_related("organization")
        .filter(user_id=request.user.pk, organization_id=org_id)
        .first()
    )
    request.membership = found  # type: ignore[attr-defined]
    return found


@register.simple_tag(takes_context=True)
def current_membership(context: dict[str, Any]) -> Membership | None:
    return _membership(context["request"])


@register.inclusion_tag("dashboard/_org_switcher.html", takes_context=True)
def org_switcher(context: dict[str, Any]) -> dict[str, Any]:
    """The user's organizations, the current one (from the URL) marked."""
    request = context["request"]
    current = _membership(request)
    return {
        "memberships": memberships_of(request.user),
        "current": current.organization if current else None,
    }
