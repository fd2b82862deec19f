"""Rate-limit plans: requests and tokens per minute, and requests in flight."""

from django.db import models


class Plan(models.Model):
    """Limits an organization is held to. A key may carry tighter limits of its own."""

    name = models.SlugField(max_length=64, unique=True)
    rpm = models.PositiveIntegerField(help_text="Requests per minute.")
    tpm = models.PositiveIntegerField(help_text="Tokens (prompt + completion) per minute.")
    max_concurrent = models.PositiveIntegerField(help_text="Requests in flight at once.")
    is_default = models.BooleanField(default=False, help_text="Given to new organizations.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_plan"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.rpm} rpm, {self.tpm} tpm, {self.max_concurrent} concurrent)"
