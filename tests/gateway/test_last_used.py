"""`last_used_at` moves without a database write per request: worker -> Redis -> Celery task."""

import time

import httpx2
import pytest

from apps.hotstate.clients import sync_redis
from apps.hotstate.keyspace import KEY_LAST_USED
from apps.keys.models import APIKey
from apps.keys.tasks import flush_last_used

pytestmark = pytest.mark.django_db(transaction=True)


def test_last_used_reaches_postgres_through_the_beat_task(alice, gateway_url):
    key = APIKey.objects.get(organization=alice.organization)
    assert key.last_used_at is None
    before = time.time()
    response = httpx2.get(
        gateway_url + "/v1/models", headers={"Authorization": f"Bearer {alice.secret}"}
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 10  # workers push their marks every 5 s
    while not sync_redis().hexists(KEY_LAST_USED, key.pk):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert flush_last_used.apply().get() >= 1  # marks of earlier tests' keys may be there too
    key.refresh_from_db()
    assert before - 1 <= key.last_used_at.timestamp() <= time.time()
    assert not sync_redis().hexists(KEY_LAST_USED, key.pk)
