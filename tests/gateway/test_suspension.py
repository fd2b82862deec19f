"""A suspended organization's keys get 403 at once, on every worker."""

import httpx2
import pytest
from django.utils import timezone

from apps.hotstate.clients import sync_redis
from apps.hotstate.keyspace import tenant_epoch

pytestmark = pytest.mark.django_db(transaction=True)


def status_of(url: str, secret: str) -> httpx2.Response:
    return httpx2.get(url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})


def test_suspended_organization_is_refused_with_403_and_unsuspension_restores(alice, gateway_url):
    assert [status_of(gateway_url, alice.secret).status_code for _ in range(6)] == [200] * 6
    alice.organization.suspended_at = timezone.now()
    alice.organization.save(update_fields=["suspended_at"])
    sync_redis().incr(tenant_epoch(alice.organization.pk))  # what suspension does on commit
    refused = [status_of(gateway_url, alice.secret) for _ in range(6)]
    assert [r.status_code for r in refused] == [403] * 6
    assert refused[0].json()["error"]["code"] == "organization_suspended"
    alice.organization.suspended_at = None
    alice.organization.save(update_fields=["suspended_at"])
    sync_redis().incr(tenant_epoch(alice.organization.pk))
    assert [status_of(gateway_url, alice.secret).status_code for _ in range(6)] == [200] * 6
