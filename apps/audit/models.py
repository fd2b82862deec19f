"""The audit trail of staff actions, and the named operator permissions.

Every staff action that changes money, limits, keys, the catalog or a tenant appends one
AuditEntry (see apps/audit/services.py). Entries are never updated or deleted.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class AuditEntry(models.Model):
    """Who did what to which row, when, with the values before and after.

    ``before``/``after`` hold JSON snapshots of the fields that changed (money as decimal
    strings, times as ISO 8601); secrets are recorded masked, never in clear.
    """

    # PROTECT keeps the trail intact: staff accounts that acted are deactivated, not deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # covered by the (actor, created_at) index
    )
    actor_label = models.CharField(
        max_length=254, help_text='Who acted: a staff email, "cli" or "system:…".'
    )
    action = models.CharField(max_length=64, help_text='What was done, e.g. "tenants.suspend".')
    target_type = models.CharField(max_length=64, help_text='"app_label.model" of the target.')
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_repr = models.CharField(max_length=300, blank=True, default="")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True, default="", help_text="Why, as the staff user said.")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["created_at"], name="audit_time"),
            models.Index(fields=["target_type", "target_id", "created_at"], name="audit_target"),
            models.Index(fields=["actor", "created_at"], name="audit_actor_time"),
            models.Index(fields=["action", "created_at"], name="audit_action_time"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_repr or self.target_id}"


class OperatorAction(models.Model):
    """No table: the named operator actions, as permissions that groups are given.

    Checked with ``user.has_perm("audit.<codename>")``; superusers hold them all.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("grant_credits", "Can grant or deduct credits"),
            ("refund_payment", "Can refund a payment through Stripe"),
            ("retry_stripe_event", "Can re-apply a failed Stripe event"),
            ("rerun_billing_close", "Can re-run a billing period close"),
            ("run_reconciliation", "Can run the reconciliation now"),
            ("change_credit_limit", "Can change billing mode and credit limit"),
            ("change_organization_plan", "Can move an organization to another plan"),
            ("suspend_organization", "Can suspend and unsuspend organizations"),
            ("revoke_api_key", "Can revoke API keys"),
            ("view_overview", "Can view the operations overview"),
        ]

    def __str__(self) -> str:
        return "operator action"
