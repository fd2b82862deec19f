"""Who may call the management API: sessions with CSRF, and management tokens."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.api.models import ManagementToken
from apps.api.services import create_management_token
from apps.keys.models import APIKey
from apps.keys.services import create_api_key
from apps.tenants.models import Membership, Role
from tests.api.support import error_of, url, with_token

pytestmark = pytest.mark.django_db

CSRF_SECRET = "a" * 32  # what Django keeps in the csrftoken cookie


def test_anonymous_callers_get_401_with_a_bearer_challenge(labs):
    response = APIClient().get(url(labs, "keys/"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="management api"'
    error = error_of(response)
    assert (error["type"], error["code"]) == ("authentication_error", "not_authenticated")


def test_a_session_write_without_the_csrf_token_is_refused(labs, alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice.user)

    response = client.post(url(labs, "keys/"), {"name": "forged"}, format="json")

    assert response.status_code == 403
    error = error_of(response)
    assert error["type"] == "permission_error"
    assert "CSRF" in error["message"]
    assert not APIKey.objects.filter(organization=labs).exists()


def test_a_session_write_with_the_csrf_token_works(labs, alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice.user)
    client.cookies["csrftoken"] = CSRF_SECRET

    response = client.post(
        url(labs, "keys/"), {"name": "real"}, format="json", HTTP_X_CSRFTOKEN=CSRF_SECRET
    )

    assert response.status_code == 201


def test_session_reads_need_no_csrf_token(labs, alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice.user)

    assert client.get(url(labs, "keys/")).status_code == 200


def test_a_management_token_works_without_session_or_csrf(labs, alice):
    _, secret = create_management_token(labs, name="ci", created_by=alice.user)
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = client.post(url(labs, "keys/"), {"name": "from-ci"}, format="json")

    assert response.status_code == 201
    key = APIKey.objects.get(pk=response.json()["id"])
    assert key.created_by == alice.user
    assert ManagementToken.objects.get().last_used_at is not None


def test_a_management_token_is_404_in_any_other_organization(labs, charlie_co, labs_token):
    client = labs_token()
    create_api_key(charlie_co, name="theirs")

    responses = [
        client.get(url(charlie_co, "keys/")),
        client.post(url(charlie_co, "keys/"), {"name": "x"}, format="json"),
        client.get(url(charlie_co, "balance/")),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert APIKey.objects.filter(organization=charlie_co).count() == 1


def test_a_read_only_token_cannot_write(labs, labs_token):
    client = labs_token(role=Role.MEMBER)

    assert client.get(url(labs, "keys/")).status_code == 200
    response = client.post(url(labs, "keys/"), {"name": "x"}, format="json")
    assert response.status_code == 403
    assert not APIKey.objects.filter(organization=labs).exists()


def test_an_admin_token_cannot_do_what_only_owners_do(labs, alice, bob, labs_token):
    client = labs_token(role=Role.ADMIN)
    bob_membership = Membership.objects.get(user=bob.user)

    promote = client.patch(
        url(labs, f"members/{bob_membership.pk}/"), {"role": "owner"}, format="json"
    )
    mint = client.post(url(labs, "tokens/"), {"name": "another"}, format="json")

    assert (promote.status_code, mint.status_code) == (403, 403)
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.MEMBER
    assert ManagementToken.objects.count() == 1


def test_tokens_cannot_act_as_a_person(labs, labs_token):
    client = labs_token()

    leave = client.post(url(labs, "leave/"))
    accept = client.post("/api/v1/invitations/accept/", {"token": "tg_inv_x"}, format="json")

    assert (leave.status_code, accept.status_code) == (403, 403)
    assert {error_of(leave)["code"], error_of(accept)["code"]} == {"session_required"}
    assert Membership.objects.filter(organization=labs, role=Role.OWNER).count() == 1


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer tg_mgmt_unknownunknownunknownunknownunknown",
        "Bearer",
        "Bearer a b",
    ],
)
def test_bad_bearer_values_are_401(labs, authorization):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)

    response = client.get(url(labs, "keys/"))

    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


def test_an_inference_key_is_not_a_management_token(labs):
    _, secret = create_api_key(labs, name="inference")

    response = with_token(secret).get(url(labs, "keys/"))

    assert response.status_code == 401
    assert "inference keys work only on /v1" in error_of(response)["message"]


def test_revoked_and_expired_tokens_are_401(labs, alice):
    revoked, revoked_secret = create_management_token(labs, name="old", created_by=alice.user)
    ManagementToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, expired_secret = create_management_token(labs, name="ended", created_by=alice.user)
    ManagementToken.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert with_token(revoked_secret).get(url(labs, "keys/")).status_code == 401
    assert with_token(expired_secret).get(url(labs, "keys/")).status_code == 401


def test_a_token_stops_when_its_creator_is_no_longer_an_owner(labs, alice, dana):
    _, secret = create_management_token(labs, name="ci", created_by=alice.user)
    Membership.objects.filter(user=dana.user).update(role=Role.OWNER)
    client = with_token(secret)
    assert client.get(url(labs, "keys/")).status_code == 200

    Membership.objects.filter(user=alice.user).update(role=Role.ADMIN)

    assert client.get(url(labs, "keys/")).status_code == 401


def test_tokens_are_hashed_and_prefixed(labs, alice):
    token, secret = create_management_token(labs, name="ci", created_by=alice.user)

    assert secret.startswith("tg_mgmt_")
    assert secret not in (token.hashed_secret, token.prefix)
    assert token.prefix == secret[:14]
