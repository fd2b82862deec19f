"""Organizations: the caller's list, one organization, renaming."""

import pytest

from apps.tenants.models import Membership, Organization, Role
from tests.api.support import error_of, url

pytestmark = pytest.mark.django_db


def test_a_session_lists_every_organization_of_its_user(labs, charlie_co, alice, charlie):
    Membership.objects.create(organization=charlie_co, user=alice.user, role=Role.MEMBER)

    response = alice.client.get("/api/v1/orgs/")

    assert response.status_code == 200
    assert [(o["name"], o["role"]) for o in response.json()["results"]] == [
        ("Alice Labs", "owner"),
        ("Charlie Co", "member"),
    ]


def test_a_token_lists_only_its_organization_with_its_own_role(labs, charlie_co, alice, labs_token):
    Membership.objects.create(organization=charlie_co, user=alice.user, role=Role.OWNER)

    response = labs_token(role=Role.MEMBER).get("/api/v1/orgs/")

    assert [(o["id"], o["role"]) for o in response.json()["results"]] == [(labs.pk, "member")]


def test_members_read_their_organization(labs, bob):
    response = bob.client.get(url(labs))

    assert response.status_code == 200
    assert response.json() == {
        "id": labs.pk,
        "name": "Alice Labs",
        "role": "member",
        "billing_mode": "prepaid",
        "created_at": labs.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_an_admin_renames_the_organization(labs, dana):
    response = dana.client.patch(url(labs), {"name": "  Alice Research  "}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Alice Research"
    labs.refresh_from_db()
    assert labs.name == "Alice Research"


def test_a_member_cannot_rename(labs, bob):
    response = bob.client.patch(url(labs), {"name": "Bob's now"}, format="json")

    assert response.status_code == 403
    labs.refresh_from_db()
    assert labs.name == "Alice Labs"


def test_a_taken_name_is_a_conflict(labs, charlie_co, alice):
    response = alice.client.patch(url(labs), {"name": "Charlie Co"}, format="json")

    assert response.status_code == 409
    assert error_of(response)["code"] == "name_taken"
    assert Organization.objects.filter(name="Charlie Co").count() == 1


def test_an_empty_name_is_422(labs, alice):
    response = alice.client.patch(url(labs), {"name": "   "}, format="json")

    assert response.status_code == 422
    assert error_of(response)["param"] == "name"


def test_outsiders_get_404_for_the_organization(labs, charlie):
    assert charlie.client.get(url(labs)).status_code == 404
    assert charlie.client.patch(url(labs), {"name": "Mine"}, format="json").status_code == 404
    labs.refresh_from_db()
    assert labs.name == "Alice Labs"
    assert [o["name"] for o in charlie.client.get("/api/v1/orgs/").json()["results"]] == [
        "Charlie Co"
    ]
