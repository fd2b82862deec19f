"""API keys through the management API: list, create (secret once), read, revoke."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.catalog.models import Model
from apps.keys.models import APIKey
from apps.keys.secrets import hash_secret
from apps.keys.services import create_api_key
from tests.api.support import error_of, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog_models(db: None) -> None:
    Model.objects.create(name="default", input_price_per_mtok=Decimal("0.1"))
    Model.objects.create(name="small", input_price_per_mtok=Decimal("0.05"))


def test_members_list_their_organizations_keys(labs, charlie_co, bob):
    create_api_key(labs, name="first")
    create_api_key(labs, name="second")
    create_api_key(charlie_co, name="not-ours")

    response = bob.client.get(url(labs, "keys/"))

    assert response.status_code == 200
    body = response.json()
    assert [key["name"] for key in body["results"]] == ["second", "first"]
    assert body["next"] is None
    assert "secret" not in body["results"][0]
    assert "hashed_secret" not in body["results"][0]


def test_an_admin_creates_a_key_and_sees_the_secret_once(labs, dana, catalog_models):
    expires = timezone.now() + timedelta(days=30)
    response = dana.client.post(
        url(labs, "keys/"),
        {
            "name": "ci",
            "expires_at": expires.isoformat(),
            "allowed_models": ["small", "small", "default"],
            "rpm": 60,
            "tpm": 5000,
            "max_concurrent": 2,
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    key = APIKey.objects.get(pk=body["id"])
    assert key.organization_id == labs.pk
    assert key.hashed_secret == hash_secret(body["secret"])
    assert body["secret"].startswith("tg_live_")
    assert body["prefix"] == key.prefix
    assert body["status"] == "active"
    assert body["created_by"] == {"id": dana.user.pk, "email": "dana@example.com"}
    assert (key.rpm, key.tpm, key.max_concurrent) == (60, 5000, 2)
    assert key.allowed_models == ["small", "default"]
    assert key.expires_at == expires
    detail = dana.client.get(url(labs, f"keys/{key.pk}/")).json()
    assert "secret" not in detail


def test_a_key_needs_only_a_name(labs, alice):
    response = alice.client.post(url(labs, "keys/"), {"name": "plain"}, format="json")

    assert response.status_code == 201
    key = APIKey.objects.get(pk=response.json()["id"])
    assert (key.allowed_models, key.rpm, key.expires_at) == ([], None, None)


def test_a_member_cannot_create_or_revoke_keys(labs, bob):
    key, _ = create_api_key(labs, name="existing")

    created = bob.client.post(url(labs, "keys/"), {"name": "mine"}, format="json")
    revoked = bob.client.post(url(labs, f"keys/{key.pk}/revoke/"))

    assert created.status_code == 403
    assert error_of(created)["type"] == "permission_error"
    assert revoked.status_code == 403
    assert APIKey.objects.filter(organization=labs).count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("allowed_models", ["default", "nope"], "allowed_models[1]"),
        ("rpm", 601, "rpm"),
        ("tpm", 0, "tpm"),
        ("max_concurrent", "many", "max_concurrent"),
        ("expires_at", "2000-01-01T00:00:00Z", "expires_at"),
        ("name", "", "name"),
    ],
)
@pytest.mark.usefixtures("catalog_models")
def test_invalid_keys_are_refused_naming_the_field(labs, alice, field, value, param):
    body = {"name": "x", field: value}

    response = alice.client.post(url(labs, "keys/"), body, format="json")

    assert response.status_code == 422
    error = error_of(response)
    assert (error["param"], error["code"], error["type"]) == (
        param,
        "invalid_value",
        "invalid_request_error",
    )
    assert not APIKey.objects.filter(organization=labs).exists()


def test_revoking_a_key_stops_it_and_is_harmless_twice(labs, dana):
    key, _ = create_api_key(labs, name="old")

    first = dana.client.post(url(labs, f"keys/{key.pk}/revoke/"))
    second = dana.client.post(url(labs, f"keys/{key.pk}/revoke/"))

    assert first.status_code == 200
    assert first.json()["status"] == "revoked"
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert second.json()["revoked_at"] == first.json()["revoked_at"]


def test_revocation_reaches_the_gateway_cutoff_after_commit(
    labs, dana, django_capture_on_commit_callbacks
):
    from apps.hotstate import keyspace
    from apps.hotstate.clients import sync_redis

    key, _ = create_api_key(labs, name="old")

    with django_capture_on_commit_callbacks(execute=True):
        dana.client.post(url(labs, f"keys/{key.pk}/revoke/"))

    assert sync_redis().exists(keyspace.key_not_valid_after(labs.pk, key.pk)) == 1


def test_status_filter(labs, bob):
    create_api_key(labs, name="active")
    revoked, _ = create_api_key(labs, name="revoked")
    APIKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, _ = create_api_key(labs, name="expired")
    APIKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    names = {
        status: [
            k["name"] for k in bob.client.get(url(labs, f"keys/?status={status}")).json()["results"]
        ]
        for status in ("active", "revoked", "expired")
    }

    assert names == {"active": ["active"], "revoked": ["revoked"], "expired": ["expired"]}
    bad = bob.client.get(url(labs, "keys/?status=lost"))
    assert bad.status_code == 422
    assert error_of(bad)["param"] == "status"


def test_keys_are_paginated_by_cursor(labs, bob):
    for number in range(5):
        create_api_key(labs, name=f"key-{number}")

    seen = []
    next_url = url(labs, "keys/?limit=2")
    while next_url:
        page = bob.client.get(next_url).json()
        assert len(page["results"]) <= 2
        seen += [key["name"] for key in page["results"]]
        next_url = page["next"]

    assert seen == ["key-4", "key-3", "key-2", "key-1", "key-0"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=two", "limit"),
        ("cursor=!!", "cursor"),
        ("colour=red", "colour"),
    ],
)
def test_bad_pagination_or_unknown_parameters_are_422(labs, bob, query, param):
    response = bob.client.get(url(labs, f"keys/?{query}"))

    assert response.status_code == 422
    assert error_of(response)["param"] == param


def test_outsiders_get_404_for_every_key_endpoint(labs, charlie):
    key, _ = create_api_key(labs, name="secret-project")

    responses = [
        charlie.client.get(url(labs, "keys/")),
        charlie.client.post(url(labs, "keys/"), {"name": "intruder"}, format="json"),
        charlie.client.get(url(labs, f"keys/{key.pk}/")),
        charlie.client.post(url(labs, f"keys/{key.pk}/revoke/")),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert {error_of(r)["code"] for r in responses} == {"not_found"}
    assert APIKey.objects.filter(organization=labs).count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_key_of_another_organization_is_404_through_ones_own(labs, charlie_co, alice):
    foreign, _ = create_api_key(charlie_co, name="theirs")

    assert alice.client.get(url(labs, f"keys/{foreign.pk}/")).status_code == 404
    assert alice.client.post(url(labs, f"keys/{foreign.pk}/revoke/")).status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_a_missing_organization_looks_like_a_foreign_one(alice):
    response = alice.client.get("/api/v1/orgs/999999/keys/")

    assert response.status_code == 404
    assert error_of(response)["message"] == "No such organization."
