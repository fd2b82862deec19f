"""Email verification links: a signed, expiring token naming the user and the address.

The token is bound to the address it was sent to, so a link stops working if the user's email
changes. It carries no secret of the user's; it only proves the mail was read.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from apps.accounts.models import User

log = logging.getLogger(__name__)

SALT = "tollgate.accounts.verify-email"
MAX_AGE = timedelta(days=3)


def make_token(user: User) -> str:
    return signing.dumps({"u": user.pk, "e": user.email}, salt=SALT, compress=True)


def user_for_token(token: str) -> User | None:
    """The user the token was made for, or None if it is forged, expired or stale."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a subclass
        return None
    if not isinstance(data, dict):
        return None
    return get_user_model().objects.filter(pk=data.get("u"), email=data.get("e")).first()


def verification_url(user: User) -> str:
    path = reverse("accounts:verify_email", kwargs={"token": make_token(user)})
    return settings.PUBLIC_BASE_URL + path


def send_verification_email(user: User) -> bool:
    """Mail the user a link that verifies their address (valid for MAX_AGE). Returns False
    (and logs, without the link) when the mail server refused or could not be reached."""
    context = {"user": user, "url": verification_url(user), "days": MAX_AGE.days}
    try:
        send_mail(
            subject="Verify your email address for Tollgate",
            message=render_to_string("accounts/email/verify_email.txt", context),
            from_email=None,
            recipient_list=[user.email],
        )
    except (OSError, smtplib.SMTPException) as error:
        log.warning("could not send the verification email of user %s: %s", user.pk, error)
        return False
    return True
