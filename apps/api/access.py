"""Which organization a management API request acts on, and with which role.

The organization comes from the URL, never from the session. A signed-in user acts with their
membership's role (non-members get 404 from `membership_for`); a management token acts with
its own role, in its own organization only (404 for any other).
"""

from dataclasses import dataclass
from typing import Any

from django.http import Http404
from rest_framework.request import Request

from apps.api.models import ManagementToken
from apps.tenants.models import Organization
from apps.tenants.permissions import membership_for, require_role


@dataclass(frozen=True, slots=True)
class OrgAccess:
    """The caller's standing in one organization for one request."""

    organization: Organization
    user: Any
    role: str
    token: ManagementToken | None

    def require(self, minimum: str) -> None:
        """Raise PermissionDenied unless the caller acts with at least `minimum`."""
        require_role(
            self.role, minimum, f"This needs the {minimum} role or higher in this organization."
        )

    @property
    def actor_label(self) -> str:
        """Who acted, for logs: the user's email, and the token's prefix if one was used."""
        email = getattr(self.user, "email", "") or "unknown"
        return f"{email} via {self.token.prefix}" if self.token else email


def token_of(request: Request) -> ManagementToken | None:
    """The management token that authenticated the request, if any."""
    return request.auth if isinstance(request.auth, ManagementToken) else None


def resolve_access(request: Request, org_id: int) -> OrgAccess:
    """The caller's access to organization `org_id`; Http404 when it has none."""
    token = token_of(request)
    if token is not None:
        if token.organization_id != org_id:
            raise Http404("No such organization.")
        return OrgAccess(token.organization, request.user, token.role, token)
    membership = membership_for(request.user, org_id)
    return OrgAccess(membership.organization, request.user, membership.role, None)
