"""Who may see and change an organization's billing: its owners and admins.

The organization comes from the URL. A user who is not a member gets 404 (the organization's
existence is not revealed); a member without a managing role gets 403. Fails closed: no
membership row, no access — staff included (operators use the admin).
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse

from apps.tenants.models import Organization
from apps.tenants.permissions import membership_for, require_manager


def billing_organization(user: Any, organization_id: int) -> Organization:
    """The organization whose billing `user` may manage: Http404 unless a member (the shared
    rule of apps/tenants/permissions.py), PermissionDenied unless an owner or admin."""
    membership = membership_for(user, organization_id)
    require_manager(membership)
    return membership.organization


def billing_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorator for dashboard views taking `org_id` from the URL: log-in required, then
    `billing_organization`; the view receives the organization instead of the id."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, org_id: int, *args: Any, **kwargs: Any) -> HttpResponse:
        organization = billing_organization(request.user, org_id)
        return view(request, organization, *args, **kwargs)

    return wrapper
