"""API keys on the dashboard: who may create and revoke, and the secret shown exactly once."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.keys.models import APIKey
from apps.keys.secrets import hash_secret
from tests.dashboard.conftest import Persona, make_key

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'value="(tg_live_[A-Za-z0-9_-]+)"')


def _create(persona: Persona, **fields: object):
    data = {"name": "ci", **fields}
    return persona.client.post(reverse("dashboard:create_key", args=[persona.org.pk]), data)


def test_owner_creates_a_key_and_sees_its_secret_once(alice: Persona) -> None:
    response = _create(alice, name="ci")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    (secret,) = SECRET.findall(response.content.decode())
    key = APIKey.objects.get(organization=alice.org)
    assert (key.name, key.hashed_secret, key.created_by_id) == (
        "ci",
        hash_secret(secret),
        alice.user.pk,
    )
    listing = alice.client.get(reverse("dashboard:keys", args=[alice.org.pk])).content.decode()
    assert secret not in listing
    assert f"{key.prefix}…" in listing
    assert "alice@example.com" in listing


def test_key_options_expiry_models_and_lower_limits(alice: Persona) -> None:
    tomorrow = timezone.now().astimezone(UTC).date() + timedelta(days=1)
    _create(
        alice,
        expires_on=tomorrow.isoformat(),
        allowed_models=["small"],
        rpm="10",
        tpm="1000",
        max_concurrent="2",
    )
    key = APIKey.objects.get(organization=alice.org)
    assert key.expires_at == datetime.combine(tomorrow, datetime.min.time(), UTC)
    assert key.allowed_models == ["small"]
    assert (key.rpm, key.tpm, key.max_concurrent) == (10, 1000, 2)


def test_key_limits_above_the_plan_or_past_expiry_are_refused(alice: Persona) -> None:
    from apps.limits.models import Plan

    alice.org.plan = Plan.objects.create(name="starter", rpm=60, tpm=10000, max_concurrent=4)
    alice.org.save()
    response = _create(alice, rpm="61", expires_on=date(2020, 1, 1).isoformat())
    text = response.content.decode()
    assert "Your plan allows 60; set a lower value or none." in text
    assert "Pick a day after today." in text
    assert not APIKey.objects.exists()


def test_member_may_list_keys_but_gets_403_creating_or_revoking(
    alice: Persona, bob: Persona
) -> None:
    key = make_key(alice.org)
    assert bob.client.get(reverse("dashboard:keys", args=[alice.org.pk])).status_code == 200
    assert _create(bob).status_code == 403
    revoke_url = reverse("dashboard:revoke_key", args=[alice.org.pk, key.pk])
    assert bob.client.get(revoke_url).status_code == 403
    assert bob.client.post(revoke_url).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert APIKey.objects.count() == 1
    minting = bob.client.post(reverse("dashboard:playground_key", args=[alice.org.pk]))
    assert minting.status_code == 403


def test_admin_may_create_keys(alice: Persona, bob: Persona) -> None:
    bob.membership.role = "admin"
    bob.membership.save()
    assert _create(bob).status_code == 200
    assert APIKey.objects.get().created_by_id == bob.user.pk


def test_unverified_owner_cannot_create_keys(alice: Persona) -> None:
    alice.user.email_verified_at = None
    alice.user.save()
    response = _create(alice)
    assert "Verify your email address before creating keys." in response.content.decode()
    assert not APIKey.objects.exists()


def test_revoke_asks_for_confirmation_then_revokes(alice: Persona) -> None:
    key = make_key(alice.org, name="old")
    url = reverse("dashboard:revoke_key", args=[alice.org.pk, key.pk])
    confirm = alice.client.get(url)
    assert "Revoke old?" in confirm.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    response = alice.client.post(url)
    assert response.url == reverse("dashboard:keys", args=[alice.org.pk])
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_playground_key_expires_within_the_hour_and_is_not_cached(alice: Persona) -> None:
    response = alice.client.post(reverse("dashboard:playground_key", args=[alice.org.pk]))
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    key = APIKey.objects.get(organization=alice.org)
    assert key.hashed_secret == hash_secret(data["secret"])
    assert key.name == "Playground (alice@example.com)"
    assert timedelta(minutes=59) < key.expires_at - timezone.now() <= timedelta(hours=1)
