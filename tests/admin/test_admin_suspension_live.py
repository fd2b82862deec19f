"""Suspension from the admin reaches the live gateway: the organization's key gets 403 within
seconds, and works again after unsuspension."""

import time

import httpx2
import pytest
from django.urls import reverse

from tests.admin.conftest import staff

# The live server needs committed rows (transaction=True). A transactional test empties the
# database when it ends, staff groups created by the migrations included, so which groups exist
# here depends on the tests that ran before: the operator is a superuser (who needs no group).
# Who may suspend is tested in test_admin_tenants.py.
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
    client = login(staff("root@tollgate.example", superuser=True))
    org_id = alice.organization.pk
    assert status_after_change(gateway_url, alice.secret, 200) == 200

    suspend = reverse("admin:tenants_organization_suspend", args=[org_id])
    assert client.post(suspend, {"reason": "abuse"}).status_code == 302
    refused = httpx2.get(
        gateway_url + "/v1/models", headers={"Authorization": f"Bearer {alice.secret}"}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "organization_suspended")

    unsuspend = reverse("admin:tenants_organization_unsuspend", args=[org_id])
    assert client.post(unsuspend, {"reason": "ok"}).status_code == 302
    assert status_after_change(gateway_url, alice.secret, 200) == 200
