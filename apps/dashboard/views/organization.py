"""Organization settings: rename, members and their roles, invitations, leaving.

Every change goes through apps.tenants.services, which enforces the rules (owners and admins
manage members; only owners make or remove owners; an organization keeps an owner). A rule the
services refuse becomes a message on the page; the page only offers what the role allows."""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.dashboard.access import org_page
from apps.dashboard.forms import InviteForm, RenameOrganizationForm, RoleForm
from apps.dashboard.selectors import invitation_of, member_of, members_of, open_invitations_of
from apps.tenants.models import Membership
from apps.tenants.services import (
    AlreadyMemberError,
    MembershipRuleError,
    OrganizationNameTakenError,
    change_member_role,
    invite_member,
    leave_organization,
    remove_member,
    rename_organization,
    revoke_invitation,
)


def _settings_page(
    request: HttpRequest,
    membership: Membership,
    *,
    rename_form: RenameOrganizationForm | None = None,
    invite_form: InviteForm | None = None,
) -> HttpResponse:
    organization = membership.organization
    members = [
        (m, RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")) for m in members_of(organization)
    ]
    context = {
        "members": members,
        "invitations": open_invitations_of(organization) if membership.can_manage else [],
        "rename_form": rename_form or RenameOrganizationForm(initial={"name": organization.name}),
        "invite_form": invite_form or InviteForm(),
    }
    return render(request, "dashboard/settings.html", context)


def _back(membership: Membership) -> HttpResponse:
    return redirect("dashboard:settings", org_id=membership.organization_id)


def _attempt(request: HttpRequest, action: Callable[[], object], success: str) -> bool:
    """Run a service call; report a refused rule as an error message instead of failing."""
    try:
        action()
    except (MembershipRuleError, PermissionDenied) as error:
        messages.error(request, str(error))
        return False
    messages.success(request, success)
    return True


@org_page()
def settings_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _settings_page(request, membership)


@require_POST
@org_page(managers_only=True)
def rename(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = RenameOrganizationForm(request.POST)
    if form.is_valid():
        try:
            rename_organization(
                membership.organization, form.cleaned_data["name"], acting_user=request.user
            )
        except (OrganizationNameTakenError, ValueError) as error:
            form.add_error("name", str(error))
        else:
            messages.success(request, "Renamed the organization.")
            return _back(membership)
    return _settings_page(request, membership, rename_form=form)


@require_POST
@org_page(managers_only=True)
def invite(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Invite by email with a role; the services email the accept link."""
    form = InviteForm(request.POST)
    if form.is_valid():
        email, role = form.cleaned_data["email"], form.cleaned_data["role"]
        try:
            invite_member(membership.organization, email=email, role=role, invited_by=request.user)
        except (AlreadyMemberError, PermissionDenied, ValueError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Invitation sent to {email}.")
            return _back(membership)
    return _settings_page(request, membership, invite_form=form)


@require_POST
@org_page(managers_only=True)
def cancel_invitation(
    request: HttpRequest, membership: Membership, invitation_id: int
) -> HttpResponse:
    invitation = invitation_of(membership.organization, invitation_id)
    _attempt(
        request,
        lambda: revoke_invitation(invitation, acting_user=request.user),
        f"Cancelled the invitation of {invitation.email}.",
    )
    return _back(membership)


@require_POST
@org_page(managers_only=True)
def change_role(request: HttpRequest, membership: Membership, membership_id: int) -> HttpResponse:
    target = member_of(membership.organization, membership_id)
    form = RoleForm(request.POST, prefix=f"m{target.pk}")
    if form.is_valid():
        role = form.cleaned_data["role"]
        _attempt(
            request,
            lambda: change_member_role(
                membership.organization, target, role, acting_user=request.user
            ),
            f"{target.user.email} is now {role}.",
        )
    return _back(membership)


@require_http_methods(["GET", "POST"])
@org_page(managers_only=True)
def remove(request: HttpRequest, membership: Membership, membership_id: int) -> HttpResponse:
    """GET asks for confirmation; POST removes the member."""
    target = member_of(membership.organization, membership_id)
    if request.method == "POST":
        _attempt(
            request,
            lambda: remove_member(membership.organization, target, acting_user=request.user),
            f"Removed {target.user.email}.",
        )
        return _back(membership)
    return render(request, "dashboard/member_remove.html", {"target": target})


@require_http_methods(["GET", "POST"])
@org_page()
def leave(request: HttpRequest, membership: Membership) -> HttpResponse:
    """GET asks for confirmation; POST ends the user's own membership."""
    if request.method == "POST":
        left = _attempt(
            request,
            lambda: leave_organization(membership.organization, request.user),
            f"You left {membership.organization.name}.",
        )
        return redirect("dashboard:home") if left else _back(membership)
    return render(request, "dashboard/leave.html")
