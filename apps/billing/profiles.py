"""An organization's BillingProfile: created on first use, locked to serialize billing writes of
one organization (customer creation, crossings, refunds, period closes)."""

from django.db import connection

from apps.billing.models import BillingProfile
from apps.tenants.models import Membership, Organization, Role


def get_profile(organization_id: int) -> BillingProfile:
    """The organization's profile (default settings if it has none yet; not saved then)."""
    profile = BillingProfile.objects.filter(pk=organization_id).first()
    return profile if profile is not None else BillingProfile(organization_id=organization_id)


def lock_profile(organization_id: int) -> BillingProfile:
    """The organization's profile, created if missing, locked (SELECT … FOR UPDATE) until the
    caller's transaction ends. One lock order for billing: the profile before anything else."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_profile must run inside a transaction")
    BillingProfile.objects.bulk_create(
        [BillingProfile(organization_id=organization_id)], ignore_conflicts=True
    )
    return BillingProfile.objects.select_for_update().get(pk=organization_id)


def organization_for_customer(customer_id: str) -> Organization | None:
    """The organization whose Stripe customer this is, if any."""
    if not customer_id:
        return None
    profile = (
        BillingProfile.objects.select_related("organization")
        .filter(stripe_customer_id=customer_id)
        .first()
    )
    return profile.organization if profile is not None else None


def owner_emails(organization_id: int) -> list[str]:
    """Email addresses of the organization's owners, sorted."""
    return sorted(
        Membership.objects.filter(organization_id=organization_id, role=Role.OWNER)
        .values_list("user__email", flat=True)
        .distinct()
    )
