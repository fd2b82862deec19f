"""Organization settings and invitations on the dashboard, through the tenants services."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from apps.tenants.models import Invitation, Membership, Role
from apps.tenants.services import invite_member
from tests.dashboard.conftest import PASSWORD, Persona

pytestmark = pytest.mark.django_db


def _url(name: str, persona: Persona, *args: int) -> str:
    return reverse(f"dashboard:{name}", args=[persona.org.pk, *args])


def test_owner_renames_the_organization_and_a_taken_name_is_refused(
    alice: Persona, charlie: Persona
) -> None:
    taken = alice.client.post(_url("rename", alice), {"name": "Charlie Co"})
    assert "An organization named &#x27;Charlie Co&#x27; exists already." in taken.content.decode()
    response = alice.client.post(_url("rename", alice), {"name": "Alice Research"})
    assert response.url == _url("settings", alice)
    alice.org.refresh_from_db()
    assert alice.org.name == "Alice Research"


def test_members_get_403_for_every_management_action(alice: Persona, bob: Persona) -> None:
    invitation, _ = invite_member(
        alice.org, email="x@example.com", role="member", invited_by=alice.user
    )
    actions = [
        ("rename", (), {"name": "Bob's now"}),
        ("invite", (), {"email": "y@example.com", "role": "member"}),
        ("change_role", (alice.membership.pk,), {f"m{alice.membership.pk}-role": "member"}),
        ("remove_member", (alice.membership.pk,), {}),
        ("cancel_invitation", (invitation.pk,), {}),
    ]
    for name, args, data in actions:
        assert bob.client.post(_url(name, bob, *args), data).status_code == 403, name
    alice.org.refresh_from_db()
    assert alice.org.name == "Alice Labs"
    assert Membership.objects.get(pk=alice.membership.pk).role == Role.OWNER
    assert Invitation.objects.filter(organization=alice.org).count() == 1
    settings_page = bob.client.get(_url("settings", bob)).content.decode()
    assert "Send invitation" not in settings_page
    assert "Leave this organization" in settings_page


def test_invite_mails_the_accept_link_on_the_public_base_url(
    alice: Persona, settings, django_capture_on_commit_callbacks
) -> None:
    settings.PUBLIC_BASE_URL = "https://llm.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post(
            _url("invite", alice), {"email": "New@Example.com", "role": "admin"}
        )
    assert response.url == _url("settings", alice)
    invitation = Invitation.objects.get(organization=alice.org)
    assert (invitation.email, invitation.role) == ("new@example.com", "admin")
    (message,) = mail.outbox
    (link,) = re.findall(r"https://llm\.example\.com/invitations/\S+/accept", message.body)
    assert link
    listing = alice.client.get(_url("settings", alice)).content.decode()
    assert "new@example.com" in listing


def test_an_admin_may_not_invite_an_owner(alice: Persona, bob: Persona) -> None:
    bob.membership.role = Role.ADMIN
    bob.membership.save()
    response = bob.client.post(_url("invite", bob), {"email": "boss@example.com", "role": "owner"})
    assert "Only owners can make owners." in response.content.decode()
    assert not Invitation.objects.exists()


def test_owner_changes_a_role_and_removes_a_member(alice: Persona, bob: Persona) -> None:
    alice.client.post(
        _url("change_role", alice, bob.membership.pk), {f"m{bob.membership.pk}-role": "admin"}
    )
    assert Membership.objects.get(pk=bob.membership.pk).role == Role.ADMIN
    confirm = alice.client.get(_url("remove_member", alice, bob.membership.pk))
    assert "Remove bob@example.com?" in confirm.content.decode()
    alice.client.post(_url("remove_member", alice, bob.membership.pk))
    assert not Membership.objects.filter(pk=bob.membership.pk).exists()


def test_the_last_owner_cannot_leave_but_a_member_can(alice: Persona, bob: Persona) -> None:
    refused = alice.client.post(_url("leave", alice), follow=True)
    assert "You are the last owner" in refused.content.decode()
    assert Membership.objects.filter(pk=alice.membership.pk).exists()
    left = bob.client.post(_url("leave", bob))
    assert left.url == reverse("dashboard:home")
    assert not Membership.objects.filter(pk=bob.membership.pk).exists()
    assert bob.client.get(_url("overview", bob)).status_code == 404


def _invite(alice: Persona, email: str) -> str:
    _, token = invite_member(alice.org, email=email, role="member", invited_by=alice.user)
    return reverse("dashboard:accept_invitation", args=[token])


def test_accept_page_for_visitors_offers_sign_up_with_the_invited_address(
    client, alice: Persona
) -> None:
    url = _invite(alice, "guest@example.com")
    assert url.endswith("/accept")
    text = client.get(url).content.decode()
    assert "Join Alice Labs" in text
    assert "email=guest%40example.com" in text
    signup = client.post(
        f"{reverse('accounts:signup')}?next={url}",
        {"email": "guest@example.com", "password": PASSWORD, "next": url},
    )
    assert signup.url == url
    accepted = client.post(url)
    assert accepted.url == reverse("dashboard:overview", args=[alice.org.pk])
    guest = get_user_model().objects.get(email="guest@example.com")
    assert Membership.objects.get(organization=alice.org, user=guest).role == Role.MEMBER


def test_accept_page_refuses_another_users_invitation(alice: Persona, charlie: Persona) -> None:
    url = _invite(alice, "guest@example.com")
    page = charlie.client.get(url).content.decode()
    assert "the invitation was sent to guest@example.com" in page
    assert "Accept the invitation" not in page
    charlie.client.post(url)
    assert not Membership.objects.filter(organization=alice.org, user=charlie.user).exists()


def test_unknown_or_used_invitations_are_404(client, alice: Persona, bob: Persona) -> None:
    assert client.get("/invitations/tg_inv_nothing/accept").status_code == 404
    url = _invite(alice, "carol@example.com")
    carol = get_user_model().objects.create_user("carol@example.com", PASSWORD)
    client.force_login(carol)
    client.post(url)
    assert client.get(url).status_code == 404
    assert "no-store" in client.get(url)["Cache-Control"]
