"""Metered usage: one row per finished request, written by the ingest pipeline (ingest.py)."""

from django.db import models
from django.db.models.functions import Now

from apps.keys.models import APIKey
from apps.metering.events import UsageStatus
from apps.tenants.models import Organization


class Status(models.TextChoices):
    OK = UsageStatus.OK, "Answered in full"
    CANCELLED = UsageStatus.CANCELLED, "Client left mid-stream"
    FAILED = UsageStatus.FAILED, "Upstream failed mid-stream"


class UsageRecord(models.Model):
    """What one request used and cost. Prices are the snapshot in force when it started, so a
    later catalog change never rewrites history; the deployment is a plain id for the same
    reason. Never updated after ingest."""

    request_id = models.CharField(max_length=100, help_text="Unique: see Meta.constraints.")
    # The composite indexes below start with these columns, so no single-column index.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, db_index=False, related_name="usage_records"
    )
    # No database constraint: usage history outlives deleted keys, and stays readable by id.
    key = models.ForeignKey(
        APIKey,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    model = models.CharField(max_length=128, help_text="Public model name.")
    deployment_id = models.BigIntegerField(help_text="catalog.Deployment id at the time.")
    prompt_tokens = models.PositiveIntegerField()
    completion_tokens = models.PositiveIntegerField()
    input_price_per_mtok = models.DecimalField(
        max_digits=20, decimal_places=10, help_text="USD per million prompt tokens."
    )
    output_price_per_mtok = models.DecimalField(
        max_digits=20, decimal_places=10, help_text="USD per million completion tokens."
    )
    cost = models.DecimalField(
        max_digits=20, decimal_places=10, help_text="USD, 10 decimal places; what was charged."
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    stream = models.BooleanField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    latency_ms = models.IntegerField(help_text="Milliseconds from start to finish.")
    ttft_ms = models.IntegerField(null=True, blank=True, help_text="Milliseconds to first token.")
    ingested_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [
            models.Index(fields=["organization", "started_at"], name="usage_org_time"),
            models.Index(fields=["key", "started_at"], name="usage_key_time"),
            models.Index(fields=["model", "started_at"], name="usage_model_time"),
        ]
        constraints = [
            # A constraint rather than unique=True: no extra LIKE index on every insert.
            models.UniqueConstraint(fields=["request_id"], name="usage_request_id_unique"),
            models.CheckConstraint(condition=models.Q(cost__gte=0), name="usage_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.model} {self.cost} USD"
