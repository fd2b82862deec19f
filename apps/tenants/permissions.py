"""Who may see and change what in an organization. Shared by the dashboard and the API.

Tenancy fails closed: an organization a user is not a member of does not exist for them
(Http404, never a 403 that would confirm it exists). Inside an organization, roles rank
member < admin < owner; owners and admins manage keys, billing and members.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.tenants.models import Membership, Role

ROLE_RANK: dict[str, int] = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}


def membership_for(user: Any, org_id: int | str) -> Membership:
    """The user's membership of organization `org_id`, with the organization and user loaded.

    Raises Http404 when the user is anonymous, the id is malformed, the organization does not
    exist or the user is not a member: all look the same from outside.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        raise Http404("No such organization.")
    try:
        org_pk = int(org_id)
    except (TypeError, ValueError):
        raise Http404("No such organization.") from None
    membership = (
        Membership.objects.select_related("organization", "organization__plan", "user")
        .filter(organization_id=org_pk, user_id=user.pk)
        .first()
    )
    if membership is None:
        raise Http404("No such organization.")
    return membership


def role_at_least(role: str, minimum: str) -> bool:
    """Whether `role` ranks at least as high as `minimum`. Unknown roles rank below all."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[minimum]


def lower_role(role: str, cap: str | None) -> str:
    """`role`, lowered to `cap` when `cap` ranks below it (None: no cap)."""
    if cap is None or ROLE_RANK.get(cap, -1) >= ROLE_RANK.get(role, -1):
        return role
    return cap


def require_role(role: str, minimum: str, message: str) -> None:
    """Raise PermissionDenied(message) unless `role` ranks at least `minimum`."""
    if not role_at_least(role, minimum):
        raise PermissionDenied(message)


def require_manager(membership: Membership) -> None:
    """Raise PermissionDenied unless the member is an owner or an admin."""
    require_role(
        membership.role, Role.ADMIN, "Only owners and admins can do this in this organization."
    )


def require_owner(membership: Membership) -> None:
    """Raise PermissionDenied unless the member is an owner."""
    require_role(membership.role, Role.OWNER, "Only owners can do this in this organization.")
