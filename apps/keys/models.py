"""Inference API keys. Only an HMAC of the secret is stored; the secret is shown once."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.tenants.models import Organization


class APIKey(models.Model):
    """A bearer key for /v1. `hashed_secret` is HMAC-SHA256 under API_KEY_HMAC_SECRET."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=32, db_index=True, help_text="Shown for recognition.")
    hashed_secret = models.CharField(max_length=64, unique=True)
    hash_version = models.PositiveSmallIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute.")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute.")
    max_concurrent = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests in flight at once."
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Public model names; empty means every model."
    )

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def is_active(self, now: "timezone.datetime | None" = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or self.expires_at > now

    @property
    def not_valid_after(self) -> "timezone.datetime | None":
        """The earliest of revocation and expiry: the instant the key stops working."""
        moments = [m for m in (self.revoked_at, self.expires_at) if m is not None]
        return min(moments) if moments else None
