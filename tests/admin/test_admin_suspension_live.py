"""Suspension from the admin reaches the live gateway: the organization's key gets 403 within
seconds, and works again after unsuspension."""

import time

import httpx2
import pytest
from django.urls import reverse

from tests.admin.conftest import staff

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_S = 5.0


def status_after_change(gateway_url: str, secret: str, expected: int) -> int:
    """Poll /v1/models until it answers ``expected`` or the deadline passes; the last status."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        response = httpx2.get(
            gateway_url + "/v1/models", headers={"Authorization": f"Bearer {secret}"}
        )
        if response.status_code == expected or time.monotonic() > deadline:
            return response.status_code
        time.sleep(0.05)


def test_suspending_in_the_admin_refuses_the_keys_on_the_live_gateway(alice, gateway_url, login):
    sam = staff("sam@tollgate.example", "support")
    client = login(sam)
    org_id = alice.organization.pk
    assert status_after_change(gateway_url, alice.secret, 200) == 200

    client.post(reverse("admin:tenants_organization_suspend", args=[org_id]), {"reason": "abuse"})
    refused = httpx2.get(
        gateway_url + "/v1/models", headers={"Authorization": f"Bearer {alice.secret}"}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "organization_suspended")

    client.post(reverse("admin:tenants_organization_unsuspend", args=[org_id]), {"reason": "ok"})
    assert status_after_change(gateway_url, alice.secret, 200) == 200
