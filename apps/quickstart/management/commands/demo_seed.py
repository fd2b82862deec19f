"""``manage.py demo_seed``: the demo's accounts, run by ``manage.py demo`` on every start.

Idempotent: the superuser, the organization and its starting credits are made once; only the
API key is new each time (a secret cannot be shown again). Prints ``name=value`` lines.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.keys.services import create_api_key
from apps.ledger.services import grant_credits
from apps.tenants.models import Organization
from apps.tenants.services import create_organization

PASSWORD_VARIABLE = "DEMO_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password
CREDITS_IDEMPOTENCY_KEY = "demo:starting-credits"


class Command(BaseCommand):
    help = (
        "Create (once) the demo superuser, organization and starting credits, and a new API "
        f"key. The admin password is read from ${PASSWORD_VARIABLE}. Prints name=value lines."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin-email", default="admin@example.com")
        parser.add_argument("--organization", default="Demo Org")
        parser.add_argument("--owner", default="demo@example.com", help="owner's email")
        parser.add_argument("--key-name", default="demo")
        parser.add_argument("--credits", default="100", help="USD granted once to the org")

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get(PASSWORD_VARIABLE, "")
        if not password:
            raise CommandError(f"Set ${PASSWORD_VARIABLE} to the admin password.")
        admin = ensure_superuser(options["admin_email"], password)
        organization, created = ensure_organization(options["organization"], options["owner"])
        granted = ensure_starting_credits(organization, Decimal(options["credits"]))
        key, secret = create_api_key(organization, name=options["key_name"])
        self._emit("admin_email", options["admin_email"])
        self._emit("admin", admin)
        self._emit("organization_id", organization.pk)
        self._emit("organization", "created" if created else "existing")
        self._emit("credits", "granted" if granted else "already granted")
        self._emit("api_key_prefix", key.prefix)
        self._emit("api_key", secret)

    def _emit(self, name: str, value: object) -> None:
        self.stdout.write(f"{name}={value}")


def ensure_superuser(email: str, password: str) -> str:
    """Make ``email`` an active superuser whose password is ``password``; what was done."""
    user_model = get_user_model()
    user = user_model.objects.filter(email=email.lower()).first()
    if user is None:
        user_model.objects.create_superuser(email=email, password=password)
        return "created"
    if user.is_active and user.is_superuser and user.check_password(password):
        return "unchanged"
    user.is_active = user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return "updated"


def ensure_organization(name: str, owner_email: str) -> tuple[Organization, bool]:
    """The organization called ``name``, created with this owner if missing."""
    with transaction.atomic():
        existing = Organization.objects.filter(name=name).first()
        if existing is not None:
            return existing, False
        return create_organization(name, owner_email=owner_email), True


def ensure_starting_credits(organization: Organization, amount: Decimal) -> bool:
    """Grant ``amount`` USD once (prepaid organizations cannot spend from zero)."""
    _, created = grant_credits(
        organization,
        amount,
        reason="Demo starting credits",
        idempotency_key=CREDITS_IDEMPOTENCY_KEY,
        actor_label="demo",
    )
    return created
