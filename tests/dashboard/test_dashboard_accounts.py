"""Sign-up, email verification, throttled login and password reset."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from apps.accounts import email_verification
from apps.ledger.models import LedgerEntry
from apps.ledger.selectors import ledger_balance
from apps.tenants.models import Membership
from apps.tenants.services import create_organization
from tests.dashboard.conftest import PASSWORD, Persona

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://\S+")


def _sign_up(client, email: str = "new@example.com", password: str = PASSWORD):
    return client.post(reverse("accounts:signup"), {"email": email, "password": password})


def test_sign_up_creates_user_owned_organization_and_welcome_credit(client, settings) -> None:
    settings.WELCOME_CREDIT_USD = "5.25"
    response = _sign_up(client, email="New@Example.com")
    user = get_user_model().objects.get(email="new@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == "owner"
    assert membership.organization.name == "new's organization"
    assert response.status_code == 302
    assert response.url == reverse("dashboard:overview", args=[membership.organization_id])
    assert ledger_balance(membership.organization) == Decimal("5.25")
    entry = LedgerEntry.objects.get(organization=membership.organization)
    assert (entry.kind, entry.memo, entry.actor_id) == ("grant", "Welcome credit", user.pk)
    assert user.check_password(PASSWORD)
    assert user.email_verified_at is None
    assert client.get(response.url).status_code == 200  # logged in


def test_sign_up_without_welcome_credit_writes_no_ledger_entry(client, settings) -> None:
    settings.WELCOME_CREDIT_USD = "0"
    _sign_up(client)
    assert LedgerEntry.objects.count() == 0


def test_sign_up_numbers_the_organization_when_its_name_is_taken(client) -> None:
    create_organization("new's organization", owner_email="someone@example.com")
    _sign_up(client)
    user = get_user_model().objects.get(email="new@example.com")
    assert user.memberships.get().organization.name == "new's organization 2"


def test_sign_up_refuses_weak_passwords_and_taken_addresses(client) -> None:
    weak = _sign_up(client, password="12345678")
    assert weak.status_code == 200
    assert "This password is too common." in weak.content.decode()
    _sign_up(client, email="taken@example.com")
    client.logout()
    taken = _sign_up(client, email="TAKEN@example.com")
    assert "An account with this email address exists." in taken.content.decode()
    assert get_user_model().objects.filter(email__iexact="taken@example.com").count() == 1
    assert not get_user_model().objects.filter(email="new@example.com").exists()


def test_verification_email_links_to_public_base_url_and_verifies(client, settings) -> None:
    settings.PUBLIC_BASE_URL = "https://llm.example.com"
    _sign_up(client)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new@example.com"]
    (link,) = LINK.findall(message.body)
    assert link.startswith("https://llm.example.com/accounts/verify/")
    response = client.get(link.removeprefix("https://llm.example.com"))
    assert response.status_code == 200
    assert get_user_model().objects.get(email="new@example.com").email_verified_at is not None


def test_a_forged_or_stale_verification_link_is_refused(client, alice: Persona) -> None:
    user = get_user_model().objects.create_user("late@example.com", PASSWORD)
    token = email_verification.make_token(user)
    user.email = "changed@example.com"
    user.save()
    assert client.get(reverse("accounts:verify_email", args=[token])).status_code == 400
    assert client.get(reverse("accounts:verify_email", args=["nonsense"])).status_code == 400
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_login_then_logout(client, alice: Persona) -> None:
    response = client.post(
        reverse("accounts:login"), {"username": "ALICE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.url == reverse("dashboard:home")
    assert client.post(reverse("accounts:logout")).url == reverse("accounts:login")
    assert client.get(reverse("dashboard:overview", args=[alice.org.pk])).status_code == 302


def _login(client, password: str, address: str = "10.0.0.1"):
    return client.post(
        reverse("accounts:login"),
        {"username": "alice@example.com", "password": password},
        REMOTE_ADDR=address,
    )


def test_login_locks_an_account_after_five_failures_from_one_address(
    client, alice: Persona
) -> None:
    for _ in range(5):
        assert _login(client, "wrong").status_code == 200
    locked = _login(client, PASSWORD)
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-in attempts for this account." in text
    assert "locked for 15 more minute(s)" in text
    assert "_auth_user_id" not in client.session
    # Another address may still log in: one guesser cannot lock the owner out everywhere.
    assert _login(client, PASSWORD, address="10.0.0.2").status_code == 302


def test_a_successful_login_clears_the_failures_of_its_address(client, alice: Persona) -> None:
    for _ in range(4):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert _login(client, "wrong").status_code == 200
    assert _login(client, PASSWORD).status_code == 302


def test_password_reset_mails_a_link_on_the_public_base_url(client, settings) -> None:
    settings.PUBLIC_BASE_URL = "https://llm.example.com"
    create_organization("Owned by CLI", owner_email="cli@example.com")  # no usable password
    response = client.post(reverse("accounts:password_reset"), {"email": "cli@example.com"})
    assert response.url == reverse("accounts:password_reset_done")
    (message,) = mail.outbox
    (link,) = LINK.findall(message.body)
    assert link.startswith("https://llm.example.com/accounts/password-reset/")
    form_page = client.get(link.removeprefix("https://llm.example.com"), follow=True)
    assert form_page.context["validlink"] is True
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a new long passphrase", "new_password2": "a new long passphrase"},
    )
    assert done.url == reverse("accounts:password_reset_complete")
    assert (
        get_user_model()
        .objects.get(email="cli@example.com")
        .check_password("a new long passphrase")
    )
