"""Who may see which organization's pages.

The organization comes from the URL (``/orgs/<org_id>/…``), never from the session, and is
resolved through the user's membership: a user who is not a member gets 404, exactly as if the
organization did not exist. Every object a page touches is then looked up through
``membership.organization``.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse

from apps.tenants.models import Membership
from apps.tenants.permissions import membership_for, require_manager

P = ParamSpec("P")
OrgView = Callable[Concatenate[HttpRequest, Membership, P], HttpResponse]


def org_page(*, managers_only: bool = False) -> Callable[[OrgView[P]], Callable[..., HttpResponse]]:
    """Decorate a view taking (request, membership, …) to be served at a URL with `org_id`.

    Anonymous users are sent to log in; non-members get 404; with ``managers_only``, members
    who are neither owner nor admin get 403. The membership is also put on
    ``request.membership`` for the templates (navigation, organization switcher)."""

    def decorate(view: OrgView[P]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, org_id: int, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = membership_for(request.user, org_id)
            if managers_only:
                require_manager(membership)
            request.membership = membership  # type: ignore[attr-defined]
            return view(request, membership, *args, **kwargs)

        return wrapper

    return decorate
