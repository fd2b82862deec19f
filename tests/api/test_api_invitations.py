"""Invitations: invite by email, list, revoke, accept."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.keys.secrets import hash_secret
from apps.tenants.models import Invitation, Membership, Role
from apps.tenants.services import invite_member
from tests.api.support import error_of, signed_in, url

pytestmark = pytest.mark.django_db

ACCEPT = "/api/v1/invitations/accept/"


def test_an_admin_invites_by_email_and_the_link_is_mailed(
    labs, dana, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_BASE_URL = "https://tollgate.example"

    with django_capture_on_commit_callbacks(execute=True):
        response = dana.client.post(
            url(labs, "invitations/"), {"email": "Erin@Example.com", "role": "admin"}, format="json"
        )

    assert response.status_code == 201
    body = response.json()
    assert (body["email"], body["role"], body["status"]) == ("erin@example.com", "admin", "pending")
    assert body["invited_by"]["email"] == "dana@example.com"
    assert "token" not in body
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["erin@example.com"]
    link = next(line for line in message.body.splitlines() if line.startswith("https://"))
    assert link.startswith("https://tollgate.example/invitations/tg_inv_")
    assert link.endswith("/accept")
    token = link.removeprefix("https://tollgate.example/invitations/").removesuffix("/accept")
    assert Invitation.objects.get().token_hash == hash_secret(token)


def test_members_cannot_invite_or_see_invitations(labs, bob):
    invite = bob.client.post(url(labs, "invitations/"), {"email": "x@example.com"}, format="json")
    listing = bob.client.get(url(labs, "invitations/"))

    assert (invite.status_code, listing.status_code) == (403, 403)
    assert not Invitation.objects.exists()


def test_only_owners_invite_owners(labs, alice, dana):
    by_admin = dana.client.post(
        url(labs, "invitations/"), {"email": "boss@example.com", "role": "owner"}, format="json"
    )
    by_owner = alice.client.post(
        url(labs, "invitations/"), {"email": "boss@example.com", "role": "owner"}, format="json"
    )

    assert (by_admin.status_code, by_owner.status_code) == (403, 201)
    assert Invitation.objects.get().role == Role.OWNER


def test_inviting_a_member_again_is_a_conflict(labs, alice, bob):
    response = alice.client.post(
        url(labs, "invitations/"), {"email": "bob@example.com"}, format="json"
    )

    assert response.status_code == 409
    assert error_of(response)["code"] == "already_member"


def test_inviting_again_replaces_the_open_invitation(labs, alice):
    first, _ = invite_member(labs, email="erin@example.com", role="member", invited_by=alice.user)

    alice.client.post(url(labs, "invitations/"), {"email": "erin@example.com"}, format="json")

    listing = alice.client.get(url(labs, "invitations/")).json()["results"]
    assert len(listing) == 1
    assert listing[0]["id"] != first.pk
    first.refresh_from_db()
    assert first.revoked_at is not None


def test_an_admin_revokes_an_invitation(labs, alice, dana):
    invitation, token = invite_member(
        labs, email="erin@example.com", role="member", invited_by=alice.user
    )

    response = dana.client.delete(url(labs, f"invitations/{invitation.pk}/"))

    assert response.status_code == 204
    assert alice.client.get(url(labs, "invitations/")).json()["results"] == []
    erin = signed_in(member_of_nothing("erin@example.com"))
    accepted = erin.post(ACCEPT, {"token": token}, format="json")
    assert accepted.status_code == 404
    assert error_of(accepted)["code"] == "invitation_invalid"


def test_the_invited_person_accepts_and_becomes_a_member(labs, alice):
    _, token = invite_member(labs, email="erin@example.com", role="admin", invited_by=alice.user)
    erin = member_of_nothing("Erin@example.com")

    response = signed_in(erin).post(ACCEPT, {"token": token}, format="json")
    again = signed_in(erin).post(ACCEPT, {"token": token}, format="json")

    assert response.status_code == 200
    assert response.json()["id"] == labs.pk
    assert response.json()["role"] == "admin"
    assert Membership.objects.get(user=erin).role == Role.ADMIN
    assert again.status_code == 200
    assert Invitation.objects.get().accepted_by == erin


def test_someone_else_cannot_use_the_invitation(labs, alice):
    _, token = invite_member(labs, email="erin@example.com", role="member", invited_by=alice.user)
    mallory = member_of_nothing("mallory@example.com")

    response = signed_in(mallory).post(ACCEPT, {"token": token}, format="json")

    assert response.status_code == 403
    assert error_of(response)["code"] == "invitation_email_mismatch"
    assert not Membership.objects.filter(user=mallory).exists()


def test_an_expired_or_unknown_invitation_is_404(labs, alice):
    invitation, token = invite_member(
        labs, email="erin@example.com", role="member", invited_by=alice.user
    )
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    erin = signed_in(member_of_nothing("erin@example.com"))

    expired = erin.post(ACCEPT, {"token": token}, format="json")
    unknown = erin.post(ACCEPT, {"token": "tg_inv_nothing"}, format="json")

    assert (expired.status_code, unknown.status_code) == (404, 404)
    assert not Membership.objects.filter(user__email="erin@example.com").exists()


def test_accepting_needs_a_signed_in_user(labs, alice):
    from rest_framework.test import APIClient

    response = APIClient().post(ACCEPT, {"token": "tg_inv_x"}, format="json")

    assert response.status_code == 401


def test_outsiders_get_404_for_every_invitation_endpoint(labs, alice, charlie):
    invitation, _ = invite_member(
        labs, email="erin@example.com", role="member", invited_by=alice.user
    )

    responses = [
        charlie.client.get(url(labs, "invitations/")),
        charlie.client.post(url(labs, "invitations/"), {"email": "spy@example.com"}, format="json"),
        charlie.client.delete(url(labs, f"invitations/{invitation.pk}/")),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert Invitation.objects.count() == 1


def test_an_invitation_of_another_organization_is_404_through_ones_own(
    labs, charlie_co, alice, charlie
):
    foreign, _ = invite_member(
        charlie_co, email="erin@example.com", role="member", invited_by=charlie.user
    )

    response = alice.client.delete(url(labs, f"invitations/{foreign.pk}/"))

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def member_of_nothing(email: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(email=email)
