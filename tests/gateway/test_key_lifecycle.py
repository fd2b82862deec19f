"""API keys through their life: created, used, revoked, rotated, expired; never stored in clear."""

import time
from datetime import timedelta

import httpx2
import openai
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.keys.models import APIKey
from apps.keys.services import create_api_key, revoke_api_key, rotate_api_key

pytestmark = pytest.mark.django_db(transaction=True)


def status_of(gateway_url: str, secret: str) -> int:
    response = httpx2.get(gateway_url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})
    return response.status_code


def test_revoked_key_is_refused_by_every_worker_within_one_second(alice, gateway_url):
    key = APIKey.objects.get(organization=alice.organization)
    assert [status_of(gateway_url, alice.secret) for _ in range(20)] == [200] * 20  # both cached
    revoked_at = time.monotonic()
    revoke_api_key(key)
    while status_of(gateway_url, alice.secret) != 401:
        assert time.monotonic() - revoked_at < 1.0
    assert time.monotonic() - revoked_at < 1.0
    assert [status_of(gateway_url, alice.secret) for _ in range(20)] == [401] * 20


def test_expired_key_is_refused(alice, gateway_url):
    _, secret = create_api_key(alice.organization, expires_at=timezone.now() - timedelta(seconds=1))
    response = httpx2.get(gateway_url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_rotated_key_works_through_the_grace_period_then_stops(alice, gateway_url):
    old = APIKey.objects.get(organization=alice.organization)
    assert status_of(gateway_url, alice.secret) == 200
    _, new_secret = rotate_api_key(old, grace_seconds=2)
    assert status_of(gateway_url, alice.secret) == 200
    assert status_of(gateway_url, new_secret) == 200
    deadline = time.monotonic() + 4
    while status_of(gateway_url, alice.secret) == 200:
        assert time.monotonic() < deadline
    assert status_of(gateway_url, alice.secret) == 401
    assert status_of(gateway_url, new_secret) == 200


def test_secret_is_never_stored_in_clear(alice):
    tables = connection.introspection.table_names()
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" t WHERE row_to_json(t)::text LIKE %s',
                [f"%{alice.secret[8:]}%"],
            )
            assert cursor.fetchone() == (0,), table
    key = APIKey.objects.get(organization=alice.organization)
    assert alice.secret.startswith(key.prefix)
    assert len(key.hashed_secret) == 64


def test_management_commands_create_use_rotate_and_revoke_a_key(catalog, gateway_url, capsys):
    call_command("create_org", "Scripted Inc", "--owner", "ops@example.com")
    org_id = capsys.readouterr().out.strip().splitlines()[-1]
    call_command("create_key", org_id, "--name", "ci", "--models", "default")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key=secret, max_retries=0)
    assert [m.id for m in client.models.list()] == ["default"]
    prefix = APIKey.objects.get(organization_id=org_id).prefix
    call_command("rotate_key", prefix, "--grace", "0")
    rotated = capsys.readouterr().out.strip().splitlines()[-1]
    assert status_of(gateway_url, secret) == 401
    assert status_of(gateway_url, rotated) == 200
    call_command(
        "revoke_key",
        APIKey.objects.get(
            hashed_secret__isnull=False, expires_at=None, organization_id=org_id
        ).prefix,
    )
    assert status_of(gateway_url, rotated) == 401
