"""Management API state: management tokens and the responses kept for idempotency keys."""

from datetime import datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from apps.tenants.models import Organization, Role


class TokenRole(models.TextChoices):
    """What a management token may do: an admin's work, or read only. Never an owner's."""

    ADMIN = Role.ADMIN.value, "Admin (read and write)"
    MEMBER = Role.MEMBER.value, "Member (read only)"


class ManagementToken(models.Model):
    """A bearer token for the management API, scoped to one organization.

    Separate from inference keys: its own prefix (`tg_mgmt_`) and table, so neither works where
    the other is expected. `hashed_secret` is HMAC-SHA256 under API_KEY_HMAC_SECRET, as for API
    keys; the secret is shown once. A token works only while it is neither revoked nor expired
    and its creator is still an owner of the organization.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="management_tokens"
    )
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=TokenRole.choices, default=TokenRole.ADMIN)
    prefix = models.CharField(max_length=32, help_text="Shown for recognition.")
    hashed_secret = models.CharField(max_length=64, unique=True)
    hash_version = models.PositiveSmallIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def is_active(self, now: datetime | None = None) -> bool:
        """Neither revoked nor expired (the creator's role is checked on use)."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    @property
    def status(self) -> str:
        """One of active, revoked, expired."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.is_active() else "expired"


class IdempotencyRecord(models.Model):
    """The response to the first POST with an `Idempotency-Key`, per organization.

    The unique constraint makes concurrent first uses of a key wait for each other: exactly one
    runs, the others replay its response. `fingerprint` (SHA-256 of method, path and body) tells
    a retry from a different request that reuses the key. Secrets are never kept here.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder, null=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"], name="api_idempotency_key_per_org"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_created")]

    def __str__(self) -> str:
        return f"{self.key} for org {self.organization_id}"
