"""Members through the management API: list, change role, remove, leave."""

import pytest

from apps.tenants.models import Membership, Role
from tests.api.support import error_of, url

pytestmark = pytest.mark.django_db


def membership(persona) -> Membership:
    return Membership.objects.get(user=persona.user)


def test_every_member_sees_the_members(labs, alice, dana, bob, charlie):
    response = bob.client.get(url(labs, "members/"))

    assert response.status_code == 200
    rows = [(m["user"]["email"], m["role"]) for m in response.json()["results"]]
    assert rows == [
        ("alice@example.com", "owner"),
        ("dana@example.com", "admin"),
        ("bob@example.com", "member"),
    ]


def test_an_admin_promotes_a_member_to_admin(labs, dana, bob):
    response = dana.client.patch(
        url(labs, f"members/{membership(bob).pk}/"), {"role": "admin"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert membership(bob).role == Role.ADMIN


def test_only_owners_make_owners(labs, alice, dana, bob):
    target = url(labs, f"members/{membership(bob).pk}/")

    by_admin = dana.client.patch(target, {"role": "owner"}, format="json")
    assert by_admin.status_code == 403
    assert membership(bob).role == Role.MEMBER

    by_owner = alice.client.patch(target, {"role": "owner"}, format="json")
    assert by_owner.status_code == 200
    assert membership(bob).role == Role.OWNER


def test_an_admin_cannot_demote_or_remove_an_owner(labs, alice, dana):
    target = url(labs, f"members/{membership(alice).pk}/")

    demote = dana.client.patch(target, {"role": "member"}, format="json")
    remove = dana.client.delete(target)

    assert (demote.status_code, remove.status_code) == (403, 403)
    assert membership(alice).role == Role.OWNER


def test_the_last_owner_cannot_step_down_or_be_removed(labs, alice):
    target = url(labs, f"members/{membership(alice).pk}/")

    demote = alice.client.patch(target, {"role": "admin"}, format="json")
    remove = alice.client.delete(target)

    assert (demote.status_code, remove.status_code) == (409, 409)
    assert error_of(demote)["code"] == "last_owner"
    assert error_of(remove)["code"] == "last_owner"
    assert membership(alice).role == Role.OWNER


def test_an_owner_steps_down_when_another_owner_remains(labs, alice, dana):
    Membership.objects.filter(user=dana.user).update(role=Role.OWNER)

    response = alice.client.patch(
        url(labs, f"members/{membership(alice).pk}/"), {"role": "member"}, format="json"
    )

    assert response.status_code == 200
    assert membership(alice).role == Role.MEMBER


def test_members_cannot_change_roles_or_remove(labs, bob, dana):
    target = url(labs, f"members/{membership(dana).pk}/")

    change = bob.client.patch(target, {"role": "member"}, format="json")
    remove = bob.client.delete(target)

    assert (change.status_code, remove.status_code) == (403, 403)
    assert membership(dana).role == Role.ADMIN


def test_an_admin_removes_a_member(labs, dana, bob):
    response = dana.client.delete(url(labs, f"members/{membership(bob).pk}/"))

    assert response.status_code == 204
    assert not Membership.objects.filter(user=bob.user).exists()


def test_a_removed_member_loses_access_at_once(labs, dana, bob):
    dana.client.delete(url(labs, f"members/{membership(bob).pk}/"))

    assert bob.client.get(url(labs, "keys/")).status_code == 404


def test_an_unknown_role_is_422(labs, alice, bob):
    response = alice.client.patch(
        url(labs, f"members/{membership(bob).pk}/"), {"role": "emperor"}, format="json"
    )

    assert response.status_code == 422
    assert error_of(response)["param"] == "role"


def test_a_member_leaves(labs, bob):
    response = bob.client.post(url(labs, "leave/"))

    assert response.status_code == 204
    assert not Membership.objects.filter(user=bob.user).exists()


def test_the_last_owner_cannot_leave(labs, alice):
    response = alice.client.post(url(labs, "leave/"))

    assert response.status_code == 409
    assert error_of(response)["code"] == "last_owner"
    assert membership(alice).role == Role.OWNER


def test_outsiders_get_404_for_every_member_endpoint(labs, charlie, bob):
    target = url(labs, f"members/{membership(bob).pk}/")

    responses = [
        charlie.client.get(url(labs, "members/")),
        charlie.client.patch(target, {"role": "admin"}, format="json"),
        charlie.client.delete(target),
        charlie.client.post(url(labs, "leave/")),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert membership(bob).role == Role.MEMBER


def test_a_member_of_another_organization_is_404_through_ones_own(labs, charlie_co, alice, charlie):
    foreign = Membership.objects.get(user=charlie.user)

    change = alice.client.patch(
        url(labs, f"members/{foreign.pk}/"), {"role": "member"}, format="json"
    )
    remove = alice.client.delete(url(labs, f"members/{foreign.pk}/"))

    assert (change.status_code, remove.status_code) == (404, 404)
    foreign.refresh_from_db()
    assert foreign.role == Role.OWNER
