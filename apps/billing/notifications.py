"""Emails billing sends to an organization's owners (plain text, from DEFAULT_FROM_EMAIL)."""

import logging
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from apps.billing.links import billing_link
from apps.billing.models import TopUp
from apps.billing.profiles import owner_emails
from apps.tenants.models import Organization

log = logging.getLogger(__name__)


def send_low_balance(organization_id: int, balance: Decimal, threshold: Decimal) -> None:
    """The balance (USD) fell below the owners' low-balance threshold (USD)."""
    organization = Organization.objects.get(pk=organization_id)
    _send(
        organization,
        subject=f"Low balance: {organization.name}",
        template="billing/email/low_balance.txt",
        context={"balance": balance, "threshold": threshold},
    )


def send_recharge_declined(topup_id: int) -> None:
    """An auto-recharge was declined and auto-recharge is now off."""
    topup = TopUp.objects.select_related("organization").get(pk=topup_id)
    _send(
        topup.organization,
        subject=f"Auto-recharge declined: {topup.organization.name}",
        template="billing/email/recharge_declined.txt",
        context={"topup": topup},
    )


def _send(organization: Organization, *, subject: str, template: str, context: dict) -> None:
    recipients = owner_emails(organization.pk)
    if not recipients:
        log.warning("No owner to email about %r for org %d", subject, organization.pk)
        return
    body = render_to_string(
        template,
        {
            **context,
            "organization": organization,
            "billing_url": billing_link("overview", organization.pk),
        },
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
