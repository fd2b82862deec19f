"""Management tokens: owners create (secret once), list and revoke them."""

import pytest

from apps.api.models import ManagementToken
from apps.api.services import create_management_token
from apps.keys.secrets import hash_secret
from tests.api.support import error_of, url, with_token

pytestmark = pytest.mark.django_db


def test_an_owner_creates_a_token_and_sees_the_secret_once(labs, alice):
    response = alice.client.post(
        url(labs, "tokens/"), {"name": "deploys", "role": "member"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    token = ManagementToken.objects.get(pk=body["id"])
    assert body["secret"].startswith("tg_mgmt_")
    assert token.hashed_secret == hash_secret(body["secret"])
    assert (body["role"], body["status"], body["prefix"]) == ("member", "active", token.prefix)
    listed = alice.client.get(url(labs, "tokens/")).json()["results"]
    assert [t["name"] for t in listed] == ["deploys"]
    assert "secret" not in listed[0]
    assert with_token(body["secret"]).get(url(labs, "keys/")).status_code == 200


def test_a_token_cannot_be_an_owner(labs, alice):
    response = alice.client.post(
        url(labs, "tokens/"), {"name": "x", "role": "owner"}, format="json"
    )

    assert response.status_code == 422
    assert error_of(response)["param"] == "role"
    assert not ManagementToken.objects.exists()


def test_admins_and_members_cannot_manage_tokens(labs, alice, dana, bob):
    token, _ = create_management_token(labs, name="ci", created_by=alice.user)

    responses = [
        dana.client.get(url(labs, "tokens/")),
        dana.client.post(url(labs, "tokens/"), {"name": "mine"}, format="json"),
        dana.client.post(url(labs, f"tokens/{token.pk}/revoke/")),
        bob.client.get(url(labs, "tokens/")),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert ManagementToken.objects.filter(revoked_at__isnull=True).count() == 1


def test_a_revoked_token_stops_working(labs, alice):
    token, secret = create_management_token(labs, name="ci", created_by=alice.user)

    response = alice.client.post(url(labs, f"tokens/{token.pk}/revoke/"))

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert with_token(secret).get(url(labs, "keys/")).status_code == 401


def test_outsiders_get_404_for_tokens(labs, alice, charlie, charlie_co):
    token, secret = create_management_token(labs, name="ci", created_by=alice.user)

    responses = [
        charlie.client.get(url(labs, "tokens/")),
        charlie.client.post(url(labs, "tokens/"), {"name": "spy"}, format="json"),
        charlie.client.post(url(labs, f"tokens/{token.pk}/revoke/")),
        charlie.client.post(url(charlie_co, f"tokens/{token.pk}/revoke/")),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert with_token(secret).get(url(labs, "keys/")).status_code == 200
