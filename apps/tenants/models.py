"""Organizations are the tenants: keys, usage and money all belong to one."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class BillingMode(models.TextChoices):
    PREPAID = "prepaid", "Prepaid (balance may not go below zero)"
    POSTPAID = "postpaid", "Post-paid (balance may go down to minus the credit limit)"


class Organization(models.Model):
    """A tenant. Everything a customer owns hangs off one of these."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    plan = models.ForeignKey(
        "limits.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    billing_mode = models.CharField(
        max_length=8, choices=BillingMode.choices, default=BillingMode.PREPAID
    )
    credit_limit = models.DecimalField(
        max_digits=20,
        decimal_places=10,
        default=Decimal(0),
        help_text="USD. Post-paid organizations may spend down to minus this amount.",
    )
    suspended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credit_limit__gte=0), name="credit_limit_not_negative"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def spending_floor(self) -> Decimal:
        """The lowest balance (USD) requests may take the organization to."""
        return -self.credit_limit if self.billing_mode == BillingMode.POSTPAID else Decimal(0)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user's role in one organization."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        """Owners and admins manage keys, billing and members."""
        return self.role in (Role.OWNER, Role.ADMIN)


class Invitation(models.Model):
    """An offer to join an organization with a role, sent by email.

    Only an HMAC of the invitation token is stored (the scheme of API keys: see
    apps/keys/secrets.py); the token itself travels once, in the emailed link. An invitation is
    open until it is accepted, revoked or expires; each email has at most one open invitation
    per organization (inviting again revokes the previous one).
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(help_text="Lower-cased.")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.role})"

    @property
    def is_open(self) -> bool:
        """Neither accepted nor revoked (it may still have expired)."""
        return self.accepted_at is None and self.revoked_at is None

    def is_acceptable(self, now: datetime | None = None) -> bool:
        """Open and not yet expired."""
        return self.is_open and self.expires_at > (now or timezone.now())

    @property
    def status(self) -> str:
        """One of accepted, revoked, expired, pending."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "pending" if self.is_acceptable() else "expired"
