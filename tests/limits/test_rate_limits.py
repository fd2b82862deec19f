"""Rate limits on the live gateway: token buckets, concurrency, headers and Retry-After."""

import asyncio
import struct
import time

import aiohttp
import httpx2
import openai
import pytest

from apps.hotstate.clients import sync_redis
from apps.hotstate.keyspace import tenant_epoch
from apps.limits.models import Plan
from tests.conftest import tenant_with
from tests.support.polling import poll

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]
RATE_HEADERS = {
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
}


def post(url: str, secret: str, **body: object) -> httpx2.Response:
    return httpx2.post(
        url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"messages": HELLO, "max_tokens": 4, **body},
        timeout=10,
    )


async def hammer(urls: list[str], secret: str, clients: int, seconds: float, body: dict) -> dict:
    """`clients` concurrent loops posting for `seconds`; counts statuses."""
    counts: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {secret}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def loop(index: int) -> None:
            url = urls[index % len(urls)] + "/v1/chat/completions"
            while time.monotonic() < deadline:
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()
                    counts[response.status] = counts.get(response.status, 0) + 1

        await asyncio.gather(*(loop(i) for i in range(clients)))
    return counts


def test_requests_per_minute_are_exact_across_two_server_processes(
    catalog, gateway_url, second_gateway_url, demo_upstream
):
    tenant = tenant_with("Hammer", rpm=60)
    demo_upstream.reset_stats()
    started = time.monotonic()
    body = {"messages": HELLO, "max_tokens": 2}
    counts = asyncio.run(hammer([gateway_url, second_gateway_url], tenant.secret, 200, 10, body))
    window = time.monotonic() - started
    admitted = counts.get(200, 0)
    assert set(counts) == {200, 429}
    assert admitted <= 60 + 60 * window / 60
    assert admitted >= 60 + 60 * 10 / 60 - 3
    assert demo_upstream.stats()["requests"] == admitted  # refused requests never went upstream


def test_tokens_per_minute_are_exact_across_two_server_processes(
    catalog, gateway_url, second_gateway_url
):
    tenant = tenant_with("TokenHammer", tpm=3000)
    prompt = post(gateway_url, tenant.secret).json()["usage"]["prompt_tokens"]
    per_request = prompt + 40  # the demo answer fills max_tokens exactly
    body = {"messages": HELLO, "max_tokens": 40, "demo": {"completion_tokens": 40}}
    started = time.monotonic()
    counts = asyncio.run(hammer([gateway_url, second_gateway_url], tenant.secret, 200, 10, body))
    window = time.monotonic() - started
    spent = counts.get(200, 0) * per_request + (prompt + 4)
    assert set(counts) == {200, 429}
    assert spent <= 3000 + 3000 * window / 60
    assert spent >= 3000 + 3000 * 10 / 60 - 3 * per_request


def test_requests_in_flight_are_capped_across_two_server_processes(
    catalog, gateway_url, second_gateway_url
):
    tenant = tenant_with("Parallel", max_concurrent=5)
    body = {"messages": HELLO, "max_tokens": 2, "demo": {"latency_ms": 200}}
    started = time.monotonic()
    counts = asyncio.run(hammer([gateway_url, second_gateway_url], tenant.secret, 100, 4, body))
    rounds = (time.monotonic() - started) / 0.2
    assert set(counts) == {200, 429}
    assert counts[200] <= 5 * (rounds + 1)
    assert counts[200] >= 5 * rounds * 0.5


def test_headers_on_success_and_refusal_are_consistent(catalog, gateway_url):
    tenant = tenant_with("Headers", rpm=3, tpm=100000)
    first = post(gateway_url, tenant.secret)
    assert first.status_code == 200
    assert set(first.headers) >= RATE_HEADERS
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100000
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert [post(gateway_url, tenant.secret).status_code for _ in range(2)] == [200, 200]
    refused = post(gateway_url, tenant.secret)
    assert refused.status_code == 429
    assert set(refused.headers) >= RATE_HEADERS
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert "this API key allows 3 requests per minute" in error["message"]
    assert int(refused.headers["retry-after"]) == 20  # one request refills in 60 / 3 s


def test_retry_after_is_honest(catalog, gateway_url):
    tenant = tenant_with("Patient", rpm=30)
    refused = post(gateway_url, tenant.secret)
    for _ in range(60):  # spend the bucket (30 requests, refilling one every 2 s)
        if refused.status_code == 429:
            break
        refused = post(gateway_url, tenant.secret)
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 2  # whole seconds until one request has refilled (2 s at most)
    time.sleep(wait)
    assert post(gateway_url, tenant.secret).status_code == 200


def test_the_sdk_built_in_retry_gets_through(catalog, client_for, gateway_url):
    tenant = tenant_with("Retrying", rpm=20)  # one request every 3 s once the bucket is spent
    statuses = [post(gateway_url, tenant.secret).status_code for _ in range(20)]
    while statuses[-1] != 429:  # spend the bucket
        assert len(statuses) < 60
        statuses.append(post(gateway_url, tenant.secret).status_code)
    client = client_for(tenant.secret, max_retries=3)
    raw = client.chat.completions.with_raw_response.create(
        model="default", messages=HELLO, max_tokens=2
    )
    assert raw.http_response.status_code == 200
    assert raw.retries_taken >= 1


def test_key_limit_tighter_than_the_organization_is_named(catalog, gateway_url):
    plan = Plan.objects.create(name="roomy", rpm=100, tpm=1_000_000, max_concurrent=50)
    tenant = tenant_with("KeyTight", plan=plan, rpm=2)
    assert [post(gateway_url, tenant.secret).status_code for _ in range(2)] == [200, 200]
    refused = post(gateway_url, tenant.secret)
    assert refused.status_code == 429
    assert "this API key allows 2 requests per minute" in refused.json()["error"]["message"]


def test_organization_limit_tighter_than_the_key_is_named(catalog, gateway_url):
    plan = Plan.objects.create(name="tight", rpm=2, tpm=1_000_000, max_concurrent=50)
    tenant = tenant_with("OrgTight", plan=plan, rpm=100)
    assert [post(gateway_url, tenant.secret).status_code for _ in range(2)] == [200, 200]
    refused = post(gateway_url, tenant.secret)
    assert "your organization allows 2 requests per minute" in refused.json()["error"]["message"]
    assert refused.headers["x-ratelimit-limit-requests"] == "2"


def test_request_larger_than_the_token_limit_says_so(catalog, gateway_url):
    tenant = tenant_with("Small", tpm=100)
    refused = post(gateway_url, tenant.secret, max_tokens=500)
    assert refused.status_code == 429
    assert "more than the 100 tokens per minute" in refused.json()["error"]["message"]


def test_plan_change_takes_effect_without_restart(catalog, gateway_url):
    roomy = Plan.objects.create(name="before", rpm=1000, tpm=1_000_000, max_concurrent=50)
    tenant = tenant_with("Changing", plan=roomy)
    assert post(gateway_url, tenant.secret).headers["x-ratelimit-limit-requests"] == "1000"
    tight = Plan.objects.create(name="after", rpm=1, tpm=1_000_000, max_concurrent=50)
    tenant.organization.plan = tight
    tenant.organization.save(update_fields=["plan"])
    sync_redis().incr(tenant_epoch(tenant.organization.pk))  # what change_plan does on commit
    post(gateway_url, tenant.secret)  # this worker notices the new epoch
    limits = {
        post(gateway_url, tenant.secret).headers["x-ratelimit-limit-requests"] for _ in range(4)
    }
    assert limits == {"1"}


def test_rate_limited_request_costs_nothing(catalog, gateway_url):
    tenant = tenant_with("Frugal", rpm=1)
    assert post(gateway_url, tenant.secret).status_code == 200
    refused = post(gateway_url, tenant.secret)
    assert refused.status_code == 429
    assert "x-request-cost" not in refused.headers
    with pytest.raises(openai.RateLimitError):
        openai.OpenAI(
            base_url=gateway_url + "/v1", api_key=tenant.secret, max_retries=0
        ).models.list()


@pytest.mark.parametrize("scope", ["key", "organization"])
def test_the_slot_of_a_crashed_worker_comes_back_after_its_lifetime(catalog, gateway_url, scope):
    from apps.gateway.admission import ADMIT_SCRIPT, admit_keys
    from apps.keys.models import APIKey

    plan = None
    if scope == "organization":
        plan = Plan.objects.create(name="one-at-a-time", rpm=1000, tpm=10**6, max_concurrent=1)
        tenant = tenant_with("CrashedOrg", plan=plan)
    else:
        tenant = tenant_with("CrashedKey", max_concurrent=1)
    assert post(gateway_url, tenant.secret).status_code == 200  # counters seeded, key cached
    # A worker admits a request with slots that live 1 s, then dies before settling it.
    org = tenant.organization.pk
    key = APIKey.objects.get(organization_id=org)
    client = sync_redis()
    epoch = int(client.get(tenant_epoch(org)) or 0)
    key_lanes, org_lanes = (1, 0) if scope == "key" else (0, 1)
    args = ["req_crashed", 0, 0, key_lanes, 1000 if plan else 0, 10**6 if plan else 0,
            org_lanes, 10, 10, 1, "0", "0", 0, 1, 1, 1, epoch, 0, key.pk]  # fmt: skip
    admit = client.register_script(ADMIT_SCRIPT.source)
    admitted_at = time.monotonic()
    verdict = admit(keys=list(admit_keys(org, key.pk)), args=args)
    assert verdict[0] == 1

    refused = post(gateway_url, tenant.secret)
    assert refused.status_code == 429
    whose = "this API key" if scope == "key" else "your organization"
    assert (
        f"Too many requests in flight: {whose} allows 1 at once."
        in refused.json()["error"]["message"]
    )
    status = poll(  # the slot lives 1 s
        lambda: post(gateway_url, tenant.secret).status_code,
        lambda status: status != 429,
        3,
        "the dead worker's slot to come back",
    )
    assert status == 200
    assert time.monotonic() - admitted_at >= 0.9  # not before its lifetime was over


def test_a_key_slot_comes_back_after_success_failure_and_a_client_that_left(
    catalog, gateway_url, demo_upstream
):
    tenant = tenant_with("OneSlot", max_concurrent=1)
    assert post(gateway_url, tenant.secret).status_code == 200
    assert post(gateway_url, tenant.secret).status_code == 200  # the first one gave it back
    refused_upstream = post(gateway_url, tenant.secret, demo={"fail_status": 400})
    assert refused_upstream.status_code == 400
    body = {
        "messages": HELLO,
        "stream": True,
        "demo": {"completion_tokens": 200, "inter_token_ms": 50},
    }
    headers = {"Authorization": f"Bearer {tenant.secret}"}
    url = gateway_url + "/v1/chat/completions"
    with httpx2.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200
        busy = post(gateway_url, tenant.secret)  # while the stream holds the slot
        next(response.iter_lines())
    assert busy.status_code == 429
    status = poll(
        lambda: post(gateway_url, tenant.secret).status_code,
        lambda status: status != 429,
        5,
        "the slot of the stream the client left to come back",
    )
    assert status == 200


def test_the_limits_hash_outlives_its_last_write_and_its_expiry_is_refreshed_rarely(
    catalog, gateway_url, settings
):
    from apps.gateway.admission import LIMITS_HASH_EXTRA_LIFETIME_S
    from apps.hotstate.keyspace import token_buckets

    keep = settings.GATEWAY_HOLD_LIFETIME_S + LIMITS_HASH_EXTRA_LIFETIME_S
    tenant = tenant_with("Kept", rpm=10)
    assert post(gateway_url, tenant.secret).status_code == 200
    client = sync_redis()
    limits = token_buckets(tenant.organization.pk)
    first_ttl = client.ttl(limits)
    assert keep < first_ttl <= keep + 120

    # While the expiry last set is far enough away, writes leave it alone (no EXPIRE each time).
    client.expire(limits, keep + 50)
    assert post(gateway_url, tenant.secret).status_code == 200
    assert keep < client.ttl(limits) <= keep + 50

    # Once it would come too soon (the field `x` says when it was set for), it is pushed back.
    client.hset(limits, "x", struct.pack("d", time.time()))
    client.expire(limits, 30)
    response = post(gateway_url, tenant.secret)
    assert response.status_code == 200
    assert keep < client.ttl(limits) <= keep + 120
    assert response.headers["x-ratelimit-remaining-requests"] == "7"

    # A hash that expired starts over full.
    client.delete(limits)
    assert post(gateway_url, tenant.secret).headers["x-ratelimit-remaining-requests"] == "9"


def test_a_known_keys_request_refused_before_admission_still_reports_its_limits(
    catalog, gateway_url
):
    tenant = tenant_with("Peek", rpm=10, tpm=100_000)
    assert post(gateway_url, tenant.secret).status_code == 200  # takes one request
    invalid = post(gateway_url, tenant.secret, temperature=5)
    unknown_model = post(gateway_url, tenant.secret, model="no-such-model")
    not_json = httpx2.post(
        gateway_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {tenant.secret}", "content-type": "application/json"},
        content=b"{not json",
    )
    for response, status in ((invalid, 422), (unknown_model, 404), (not_json, 400)):
        assert response.status_code == status
        assert set(response.headers) >= RATE_HEADERS
        assert response.headers["x-ratelimit-limit-requests"] == "10"
        assert response.headers["x-ratelimit-remaining-requests"] == "9"  # nothing taken
        assert response.headers["x-ratelimit-limit-tokens"] == "100000"
    assert post(gateway_url, tenant.secret).headers["x-ratelimit-remaining-requests"] == "8"

    bad_key = post(gateway_url, "tg_live_" + "x" * 40)
    assert bad_key.status_code == 401
    assert not RATE_HEADERS & set(bad_key.headers)
    unlimited = tenant_with("NoLimits")
    assert not RATE_HEADERS & set(post(gateway_url, unlimited.secret, temperature=5).headers)
