"""The public model catalog and the upstream providers that serve it."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

PRICE_DECIMALS = 10  # USD per million tokens, exact to 1e-10


class Provider(models.Model):
    """An OpenAI-compatible upstream. Its API key is write-only: never logged or shown back."""

    name = models.SlugField(max_length=64, unique=True)
    base_url = models.URLField(max_length=500)
    api_key = models.CharField(max_length=500, blank=True, default="")
    api_key_env = models.CharField(
        max_length=100, blank=True, default="", help_text="Read the key from this env variable."
    )
    timeout_s = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name

    @property
    def masked_api_key(self) -> str:
        secret = self.api_key
        return "" if not secret else f"…{secret[-4:]}" if len(secret) > 12 else "…"


class Model(models.Model):
    """A public model name with its prices (USD per million tokens, exact decimals)."""

    name = models.CharField(max_length=128, unique=True)
    input_price_per_mtok = models.DecimalField(
        max_digits=20, decimal_places=PRICE_DECIMALS, default=Decimal(0)
    )
    output_price_per_mtok = models.DecimalField(
        max_digits=20, decimal_places=PRICE_DECIMALS, default=Decimal(0)
    )
    context_window = models.PositiveIntegerField(default=131072)
    max_output_tokens = models.PositiveIntegerField(default=8192)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_model",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    """One way to serve a model: a provider and its upstream model id, chosen by weight."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    upstream_model = models.CharField(max_length=200)
    weight = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "provider", "upstream_model"], name="unique_deployment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model.name} → {self.provider.name}:{self.upstream_model}"


class ModelPrice(models.Model):
    """One price of a model and when it took effect: a row per change, never updated.

    Usage rows carry their own price snapshot; this history explains where it came from.
    Prices are USD per million tokens, exact to 1e-10.
    """

    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="price_history")
    input_price_per_mtok = models.DecimalField(
        max_digits=20, decimal_places=PRICE_DECIMALS, help_text="USD per million prompt tokens."
    )
    output_price_per_mtok = models.DecimalField(
        max_digits=20,
        decimal_places=PRICE_DECIMALS,
        help_text="USD per million completion tokens.",
    )
    effective_from = models.DateTimeField(db_default=Now(), help_text="When it was saved.")
    # PROTECT keeps the row immutable; changed_label keeps who it was.
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_label = models.CharField(
        max_length=254, help_text='Who set it: a staff email, "sync_catalog" or "initial".'
    )

    class Meta:
        indexes = [models.Index(fields=["model", "effective_from"], name="model_price_time")]

    def __str__(self) -> str:
        return (
            f"{self.model_id}: {self.input_price_per_mtok} in / {self.output_price_per_mtok} out "
            f"USD per Mtok from {self.effective_from}"
        )
