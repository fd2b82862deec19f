"""State changes of organizations and memberships."""

import secrets
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.mail import get_connection, send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.audit.services import record_audit
from apps.keys.secrets import hash_secret
from apps.ledger.money import exact_usd
from apps.limits.models import Plan
from apps.limits.selectors import default_plan
from apps.limits.services import bump_tenant_epochs_on_commit
from apps.tenants.models import BillingMode, Invitation, Membership, Organization, Role
from apps.tenants.permissions import lower_role, require_role


@transaction.atomic
def create_organization(name: str, *, owner_email: str, plan: Plan | None = None) -> Organization:
    """A new organization owned by the user with this email (created without a password if
    new: they set one through password reset).

    It is put on ``plan``, or on the default plan when none is given (no plan, and so no
    organization-wide limits, when there is no default plan either).
    """
    user_model = get_user_model()
    owner, created = user_model.objects.get_or_create(email=owner_email.strip().lower())
    if created:
        owner.set_unusable_password()
        owner.save(update_fields=["password"])
    organization = Organization.objects.create(name=name, plan=plan or default_plan())
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    return organization


# --- Operator actions: suspension and credit limit (each audited, the gateway told on commit) --


@transaction.atomic
def suspend_organization(organization: Organization, *, actor: Any, reason: str = "") -> bool:
    """Refuse every key of the organization (403 ``organization_suspended``) from the next
    request on every gateway worker. Returns False, writing nothing, if already suspended."""
    locked = Organization.objects.select_for_update().get(pk=organization.pk)
    if locked.suspended_at is not None:
        return False
    locked.suspended_at = timezone.now()
    locked.save(update_fields=["suspended_at"])
    _audit_org_change(locked, actor, "tenants.suspend", {"suspended_at": None}, reason)
    bump_tenant_epochs_on_commit([locked.pk])
    organization.suspended_at = locked.suspended_at
    return True


@transaction.atomic
def unsuspend_organization(organization: Organization, *, actor: Any, reason: str = "") -> bool:
    """Let the organization's keys work again from the next request. Returns False, writing
    nothing, if it was not suspended."""
    locked = Organization.objects.select_for_update().get(pk=organization.pk)
    if locked.suspended_at is None:
        return False
    before = {"suspended_at": locked.suspended_at}
    locked.suspended_at = None
    locked.save(update_fields=["suspended_at"])
    _audit_org_change(locked, actor, "tenants.unsuspend", before, reason)
    bump_tenant_epochs_on_commit([locked.pk])
    organization.suspended_at = None
    return True


@transaction.atomic
def set_credit_limit(
    organization: Organization,
    credit_limit: Decimal,
    *,
    billing_mode: str | None = None,
    actor: Any,
    reason: str = "",
) -> bool:
    """Set the credit limit (USD, >= 0, at most 10 decimals) and optionally the billing mode.

    Both move the spending floor the gateway caches, so the tenant epoch is bumped on commit.
    Returns False, writing nothing, when neither changes. Raises ValueError for a negative
    limit or an unknown billing mode, InexactAmount for an inexact one.
    """
    credit_limit = exact_usd(credit_limit)
    if credit_limit < 0:
        raise ValueError("A credit limit cannot be negative.")
    if billing_mode is not None and billing_mode not in BillingMode.values:
        raise ValueError(f"Unknown billing mode {billing_mode!r}.")
    locked = Organization.objects.select_for_update().get(pk=organization.pk)
    fields = ("credit_limit", "billing_mode")
    before = {name: getattr(locked, name) for name in fields}
    locked.credit_limit = credit_limit
    locked.billing_mode = billing_mode or locked.billing_mode
    changed = [name for name in fields if getattr(locked, name) != before[name]]
    if not changed:
        return False
    locked.save(update_fields=changed)
    _audit_org_change(
        locked, actor, "tenants.set_credit_limit", {k: before[k] for k in changed}, reason
    )
    bump_tenant_epochs_on_commit([locked.pk])
    organization.credit_limit, organization.billing_mode = credit_limit, locked.billing_mode
    return True


def _audit_org_change(
    organization: Organization, actor: Any, action: str, before: dict[str, Any], reason: str
) -> None:
    """One audit entry with the old values and the organization's new values of those fields."""
    after = {name: getattr(organization, name) for name in before}
    record_audit(
        actor=actor, action=action, target=organization, before=before, after=after, reason=reason
    )


# --- Members, invitations and the organization's name (owners and admins manage members) -----
#
# Rules: only owners and admins manage members; only owners make owners or change or remove an
# owner; an organization always keeps at least one owner. `acting_role` lowers the actor's role
# for one call: a management token acts with its own role, never above its creator's. Every
# change locks the organization row first, so concurrent changes of one organization's members
# run one at a time and the owner count they check cannot go stale.

INVITATION_LIFETIME = timedelta(days=7)
INVITATION_TOKEN_PREFIX = "tg_inv_"  # noqa: S105 - a prefix, not a secret
INVITATION_EMAIL_TIMEOUT_S = 10
ORGANIZATION_NAME_MAX = 200


class MembershipRuleError(ValueError):
    """A change of members the organization's rules refuse; `code` names the rule."""

    code = "membership_rule"


class LastOwnerError(MembershipRuleError):
    """The change would leave the organization without an owner."""

    code = "last_owner"


class AlreadyMemberError(MembershipRuleError):
    """The invited email already belongs to a member."""

    code = "already_member"


class InvitationInvalidError(ValueError):
    """The invitation token is unknown, revoked, expired or was used by someone else."""

    code = "invitation_invalid"


class InvitationEmailMismatchError(InvitationInvalidError):
    """The invitation was sent to another address than the accepting user's."""

    code = "invitation_email_mismatch"


class OrganizationNameTakenError(ValueError):
    """Another organization already has this name."""

    code = "name_taken"


def invite_member(
    organization: Organization,
    *,
    email: str,
    role: str,
    invited_by: Any,
    acting_role: str | None = None,
) -> tuple[Invitation, str]:
    """Invite `email` to join with `role`; returns the invitation and its token (never stored).

    The accept link (PUBLIC_BASE_URL/invitations/<token>/accept) is emailed after commit. An
    earlier open invitation of the same email is revoked. Raises PermissionDenied unless the
    inviter manages members (owners only may invite owners), AlreadyMemberError when the email
    is a member already, ValueError for an unknown role.
    """
    email = _normalized_email(email)
    _check_role(role)
    with transaction.atomic():
        org = _lock_organization(organization)
        acting = _acting_role(org, invited_by, acting_role)
        require_role(acting, Role.ADMIN, "Only owners and admins can invite members.")
        _require_can_grant(acting, role)
        if Membership.objects.filter(organization=org, user__email=email).exists():
            raise AlreadyMemberError(f"{email} is already a member of {org.name}.")
        now = timezone.now()
        _open_invitations(org).filter(email=email).update(revoked_at=now)
        token = INVITATION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            organization=org,
            email=email,
            role=role,
            token_hash=hash_secret(token),
            invited_by=invited_by,
            expires_at=now + INVITATION_LIFETIME,
        )
        record_audit(
            actor=invited_by, action="tenants.invite", target=invitation, after={"role": role}
        )
        transaction.on_commit(partial(send_invitation_email, invitation, token), robust=True)
    return invitation, token


def invitation_accept_url(token: str) -> str:
    """The link that accepts an invitation (a dashboard page)."""
    return f"{settings.PUBLIC_BASE_URL}/invitations/{token}/accept"


def send_invitation_email(invitation: Invitation, token: str) -> None:
    """Email the accept link to the invitee. The token appears in the email only."""
    inviter = invitation.invited_by.email if invitation.invited_by else "Someone"
    organization = invitation.organization.name
    body = (
        f"{inviter} invited you to join {organization} on Tollgate as {invitation.role}.\n\n"
        f"Accept the invitation here:\n{invitation_accept_url(token)}\n\n"
        f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not expect this invitation, ignore this email.\n"
    )
    send_mail(
        f"You are invited to {organization} on Tollgate",
        body,
        None,
        [invitation.email],
        connection=get_connection(timeout=INVITATION_EMAIL_TIMEOUT_S),
    )


def accept_invitation(token: str, user: Any) -> Membership:
    """Make `user` a member with the invited role and use up the invitation.

    The user's email must be the invited one (InvitationEmailMismatchError). Accepting again as
    the same user returns the membership; a user who was a member already keeps their role.
    Raises InvitationInvalidError for an unknown, revoked, expired or used token.
    """
    found = Invitation.objects.filter(token_hash=hash_secret(token)).first()
    if found is None:
        raise InvitationInvalidError("This invitation link is invalid or has expired.")
    with transaction.atomic():
        org = _lock_organization(found.organization)
        invitation = Invitation.objects.select_for_update().get(pk=found.pk)
        if invitation.accepted_at is not None and invitation.accepted_by_id == user.pk:
            existing = Membership.objects.filter(organization=org, user=user).first()
            if existing is not None:
                return existing
        if not invitation.is_acceptable():
            raise InvitationInvalidError("This invitation link is invalid or has expired.")
        if invitation.email != user.email.lower():
            raise InvitationEmailMismatchError(
                "This invitation was sent to another email address: sign in with that address "
                "to accept it."
            )
        membership, _ = Membership.objects.get_or_create(
            organization=org, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        record_audit(
            actor=user,
            action="tenants.accept_invitation",
            target=membership,
            after={"role": membership.role},
        )
    return membership


@transaction.atomic
def revoke_invitation(
    invitation: Invitation, *, acting_user: Any, acting_role: str | None = None
) -> Invitation:
    """Make an open invitation unusable. Owners and admins only; revoking twice is harmless."""
    org = _lock_organization(invitation.organization)
    acting = _acting_role(org, acting_user, acting_role)
    require_role(acting, Role.ADMIN, "Only owners and admins can revoke invitations.")
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk, organization=org)
    if locked.is_open:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        record_audit(actor=acting_user, action="tenants.revoke_invitation", target=locked)
    return locked


@transaction.atomic
def change_member_role(
    organization: Organization,
    membership: Membership,
    role: str,
    *,
    acting_user: Any,
    acting_role: str | None = None,
) -> Membership:
    """Give a member another role. Owners and admins only; only owners make owners or change
    an owner's role; the last owner cannot step down (LastOwnerError)."""
    _check_role(role)
    org = _lock_organization(organization)
    target = Membership.objects.select_for_update().get(pk=membership.pk, organization=org)
    acting = _acting_role(org, acting_user, acting_role)
    require_role(acting, Role.ADMIN, "Only owners and admins can change roles.")
    if target.role == role:
        return target
    if Role.OWNER in (role, target.role):
        require_role(acting, Role.OWNER, "Only owners can make owners or change an owner's role.")
    if target.role == Role.OWNER:
        _require_another_owner(org, "The organization needs an owner: make someone else owner.")
    before = {"role": target.role}
    target.role = role
    target.save(update_fields=["role"])
    record_audit(
        actor=acting_user,
        action="tenants.change_role",
        target=target,
        before=before,
        after={"role": role},
    )
    return target


@transaction.atomic
def remove_member(
    organization: Organization,
    membership: Membership,
    *,
    acting_user: Any,
    acting_role: str | None = None,
) -> None:
    """Remove a member. Owners and admins only; only owners remove an owner; the last owner
    cannot be removed (LastOwnerError)."""
    org = _lock_organization(organization)
    target = Membership.objects.select_for_update().get(pk=membership.pk, organization=org)
    acting = _acting_role(org, acting_user, acting_role)
    require_role(acting, Role.ADMIN, "Only owners and admins can remove members.")
    if target.role == Role.OWNER:
        require_role(acting, Role.OWNER, "Only owners can remove an owner.")
        _require_another_owner(org, "The organization needs an owner: make someone else owner.")
    record_audit(
        actor=acting_user,
        action="tenants.remove_member",
        target=target,
        before={"role": target.role},
    )
    target.delete()


@transaction.atomic
def leave_organization(organization: Organization, user: Any) -> None:
    """End the user's own membership. The last owner cannot leave (LastOwnerError); raises
    Membership.DoesNotExist when the user is not a member."""
    org = _lock_organization(organization)
    membership = Membership.objects.select_for_update().get(organization=org, user=user)
    if membership.role == Role.OWNER:
        _require_another_owner(
            org, "You are the last owner: make someone else owner before you leave."
        )
    record_audit(
        actor=user, action="tenants.leave", target=membership, before={"role": membership.role}
    )
    membership.delete()


@transaction.atomic
def rename_organization(
    organization: Organization, name: str, *, acting_user: Any, acting_role: str | None = None
) -> Organization:
    """Rename the organization. Owners and admins only. Raises ValueError for an empty or too
    long name, OrganizationNameTakenError when another organization has it."""
    name = name.strip()
    if not name or len(name) > ORGANIZATION_NAME_MAX:
        raise ValueError(f"A name has 1 to {ORGANIZATION_NAME_MAX} characters.")
    org = _lock_organization(organization)
    acting = _acting_role(org, acting_user, acting_role)
    require_role(acting, Role.ADMIN, "Only owners and admins can rename the organization.")
    if org.name == name:
        return org
    if Organization.objects.filter(name=name).exclude(pk=org.pk).exists():
        raise OrganizationNameTakenError(f"An organization named {name!r} exists already.")
    before = {"name": org.name}
    org.name = name
    try:
        with transaction.atomic():
            org.save(update_fields=["name"])
    except IntegrityError:  # renamed concurrently to the same name
        raise OrganizationNameTakenError(
            f"An organization named {name!r} exists already."
        ) from None
    record_audit(
        actor=acting_user,
        action="tenants.rename",
        target=org,
        before=before,
        after={"name": name},
    )
    organization.name = name
    return org


def _lock_organization(organization: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization.pk)


def _acting_role(organization: Organization, user: Any, cap: str | None) -> str:
    """The role `user` acts with: their membership's, lowered to `cap`."""
    membership = Membership.objects.filter(
        organization=organization, user_id=getattr(user, "pk", None)
    ).first()
    if membership is None:
        raise PermissionDenied("You are not a member of this organization.")
    return lower_role(membership.role, cap)


def _require_can_grant(acting: str, role: str) -> None:
    if role == Role.OWNER:
        require_role(acting, Role.OWNER, "Only owners can make owners.")


def _require_another_owner(organization: Organization, message: str) -> None:
    """Raise LastOwnerError unless the organization has two owners or more (before a change
    that takes one away)."""
    if Membership.objects.filter(organization=organization, role=Role.OWNER).count() < 2:
        raise LastOwnerError(message)


def _open_invitations(organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
    )


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}: one of {', '.join(Role.values)}.")


def _normalized_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email:
        raise ValueError(f"{email!r} is not an email address.")
    return email
