"""When Redis goes away: fail closed (503, the default) or open (RATE_LIMIT_FAIL_OPEN=1),
never hang, and recover by itself when Redis returns."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pytest

from tests.conftest import tenant_with
from tests.support.redis_server import PrivateRedis
from tests.support.servers import gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 2}


@contextmanager
def gateway_on_private_redis(live_server_env: dict, fail_open: bool) -> Iterator[tuple]:
    redis = PrivateRedis()
    redis.start()
    env = {
        **live_server_env,
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "RATE_LIMIT_FAIL_OPEN": "1" if fail_open else "0",
        "REDIS_TIMEOUT_S": "0.5",
    }
    try:
        with gunicorn_server(env, workers=1) as url:
            yield url, redis
    finally:
        redis.stop()


def timed_post(url: str, secret: str) -> tuple[int, float, httpx2.Response]:
    started = time.monotonic()
    response = httpx2.post(
        url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json=HELLO,
        timeout=10,
    )
    return response.status_code, time.monotonic() - started, response


def test_fail_closed_refuses_quickly_and_recovers(catalog, live_server_env):
    tenant = tenant_with("Outage")
    with gateway_on_private_redis(live_server_env, fail_open=False) as (url, redis):
        assert timed_post(url, tenant.secret)[0] == 200
        redis.stop()
        status, seconds, response = timed_post(url, tenant.secret)
        assert status == 503
        assert response.json()["error"]["type"] == "service_unavailable"
        assert seconds < 3
        metrics = httpx2.get(url + "/metrics").text
        assert "tollgate_redis_failures_total" in metrics
        redis.start()  # empty: the credit counter is seeded again from the ledger
        deadline = time.monotonic() + 10
        while timed_post(url, tenant.secret)[0] != 200:
            assert time.monotonic() < deadline


def test_fail_open_admits_while_redis_is_down(catalog, live_server_env):
    tenant = tenant_with("OpenOutage", rpm=1)
    with gateway_on_private_redis(live_server_env, fail_open=True) as (url, redis):
        assert timed_post(url, tenant.secret)[0] == 200
        assert timed_post(url, tenant.secret)[0] == 429
        redis.stop()
        results = [timed_post(url, tenant.secret) for _ in range(3)]
        assert [status for status, _, _ in results] == [200, 200, 200]
        assert max(seconds for _, seconds, _ in results) < 3
        redis.start()
        assert timed_post(url, tenant.secret)[0] == 200  # limits start afresh
        assert timed_post(url, tenant.secret)[0] == 429
