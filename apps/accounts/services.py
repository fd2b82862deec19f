"""Account workflows: sign-up (a user, their first organization and its welcome credit) and
email verification."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.ledger.money import parse_usd
from apps.ledger.services import grant_credits
from apps.tenants.models import Organization
from apps.tenants.services import create_organization


class EmailTaken(ValueError):
    """An account with this email address already exists."""


@dataclass(frozen=True)
class SignUp:
    user: User
    organization: Organization


@transaction.atomic
def sign_up(email: str, password: str) -> SignUp:
    """Create a user with this (already validated) password, their first organization (they
    own it) and, when WELCOME_CREDIT_USD is above zero, its welcome credit.

    The user row is inserted first so that two sign-ups racing for one address cannot share
    an account: the loser gets EmailTaken and nothing of theirs is written."""
    email = email.strip().lower()
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(email=email, password=password)
    except IntegrityError:
        raise EmailTaken(email) from None
    organization = create_organization(_free_organization_name(email), owner_email=email)
    _grant_welcome_credit(organization, user)
    return SignUp(user=user, organization=organization)


def _free_organization_name(email: str) -> str:
    """`<local part>'s organization`, numbered when an organization of that name exists."""
    base = f"{email.split('@', 1)[0][:150]}'s organization"
    taken = set(Organization.objects.filter(name__startswith=base).values_list("name", flat=True))
    if base not in taken:
        return base
    number = 2
    while f"{base} {number}" in taken:
        number += 1
    return f"{base} {number}"


def _grant_welcome_credit(organization: Organization, user: User) -> None:
    """The operator's welcome credit (USD, WELCOME_CREDIT_USD), once per organization."""
    amount = parse_usd(str(settings.WELCOME_CREDIT_USD))
    if amount > 0:
        grant_credits(
            organization,
            amount,
            reason="Welcome credit",
            idempotency_key=f"welcome:{organization.pk}",
            actor=user,
        )


def mark_email_verified(user: User) -> bool:
    """Record that the user proved they read mail at their address. Returns False when it
    was already verified (nothing is written then)."""
    updated = (
        get_user_model()
        .objects.filter(pk=user.pk, email_verified_at__isnull=True)
        .update(email_verified_at=timezone.now())
    )
    if updated:
        user.refresh_from_db(fields=["email_verified_at"])
    return bool(updated)
