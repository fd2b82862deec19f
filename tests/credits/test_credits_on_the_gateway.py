"""Credits on the live gateway: holds, 402, lowered max_tokens, and exact charges."""

import asyncio
import time
from decimal import Decimal

import aiohttp
import httpx2
import pytest

from apps.catalog.models import Deployment, Model, Provider
from apps.gateway.tokens import count_prompt_tokens_now
from apps.hotstate.clients import sync_redis
from apps.hotstate.keyspace import MONEY_UNITS_PER_USD, USAGE_STREAM, tenant_tag
from apps.ledger.selectors import ledger_balance
from apps.metering.ingest import ingest_pending
from apps.metering.models import UsageRecord
from apps.tenants.models import BillingMode
from tests.conftest import tenant_with
from tests.support.polling import poll
from tests.support.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]
IN_PRICE, OUT_PRICE = Decimal("0.10"), Decimal("0.40")  # the `default` model, USD per Mtok


def cost_of(prompt: int, completion: int) -> Decimal:
    return (prompt * IN_PRICE + completion * OUT_PRICE) / 1_000_000


PROMPT = count_prompt_tokens_now({"messages": HELLO})


def chat(url: str, secret: str, **body: object) -> httpx2.Response:
    return httpx2.post(
        url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"messages": HELLO, **body},
        timeout=30,
    )


async def burst(url: str, secret: str, count: int, body: dict) -> list[tuple[int, dict]]:
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> tuple[int, dict]:
            async with session.post(
                url + "/v1/chat/completions", json=body, headers=headers
            ) as response:
                return response.status, {**(await response.json()), **response.headers}

        return await asyncio.gather(*(one() for _ in range(count)))


def ingest_everything(timeout_s: float = 10.0) -> None:
    """Ingest every usage event, after every answered request has settled: a non-streamed
    answer is sent before its settlement, so a client can hold all its answers while the
    last settlements (which release the holds) are still on their way."""
    client = sync_redis()
    poll(
        lambda: any(client.hlen(name) for name in client.scan_iter(match="*:holds")),
        lambda holding: not holding,
        timeout_s,
        "every request to be settled (to hold no credit)",
    )
    ingest_pending(consumer="test", claim_idle_ms=0)
    assert sync_redis().xlen(USAGE_STREAM) >= 0


def test_concurrent_requests_never_spend_more_than_the_balance(catalog, gateway_url):
    full = cost_of(PROMPT, 100)
    start = full * 20
    tenant = tenant_with("Exact", credit=str(start))
    body = {"messages": HELLO, "max_tokens": 100, "demo": {"completion_tokens": 100}}
    results = asyncio.run(burst(gateway_url, tenant.secret, 100, body))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 20 + [402] * 80
    refusal = next(payload for status, payload in results if status == 402)["error"]
    assert refusal["type"] == "insufficient_credits"
    assert refusal["code"] == "insufficient_credits"
    assert "the balance is 0 USD" in refusal["message"]
    charged = sum(Decimal(p["x-request-cost"]) for s, p in results if s == 200)
    ingest_everything()
    assert charged == start
    assert ledger_balance(tenant.organization) == Decimal(0)
    assert UsageRecord.objects.filter(organization=tenant.organization).count() == 20


def test_shorter_answers_release_holds_and_never_overspend(catalog, gateway_url):
    start = cost_of(PROMPT, 100) * 20
    tenant = tenant_with("Short", credit=str(start))
    body = {"messages": HELLO, "max_tokens": 100, "demo": {"completion_tokens": 10}}
    results = asyncio.run(burst(gateway_url, tenant.secret, 100, body))
    ok = [payload for status, payload in results if status == 200]
    charged = sum(Decimal(p["x-request-cost"]) for p in ok)
    ingest_everything()
    assert len(ok) >= 20
    assert charged <= start
    assert ledger_balance(tenant.organization) == start - charged


def test_max_tokens_is_lowered_to_what_the_balance_affords(catalog, gateway_url, demo_upstream):
    tenant = tenant_with("Lowered", credit=str(cost_of(PROMPT, 50)))
    response = chat(gateway_url, tenant.secret, max_tokens=1000, demo={"completion_tokens": 1000})
    body = response.json()
    assert response.status_code == 200
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 50
    assert response.headers["x-credits-remaining"] == "0"


def test_402_when_not_even_the_prompt_and_a_minimal_answer_fit(catalog, gateway_url):
    tenant = tenant_with("Broke", credit=str(cost_of(PROMPT, 15)))
    response = chat(gateway_url, tenant.secret, max_tokens=100)
    assert response.status_code == 402
    message = response.json()["error"]["message"]
    assert f"the balance is {cost_of(PROMPT, 15).normalize():f} USD" in message
    assert f"needs up to {cost_of(PROMPT, 100).normalize():f} USD" in message


def test_usage_cost_and_credit_headers_are_exact(catalog, gateway_url):
    tenant = tenant_with("Billed", credit="1")
    response = chat(gateway_url, tenant.secret, max_tokens=30, demo={"completion_tokens": 30})
    expected = cost_of(PROMPT, 30)
    assert '"cost":' + f"{expected.normalize():f}" in response.text  # a JSON number, exact digits
    assert Decimal(response.headers["x-request-cost"]) == expected
    assert Decimal(response.headers["x-credits-remaining"]) == Decimal(1) - expected
    ingest_everything()
    assert ledger_balance(tenant.organization) == Decimal(1) - expected


def test_stream_usage_chunk_carries_the_exact_cost(catalog, gateway_url):
    tenant = tenant_with("Streamed", credit="1")
    response = chat(
        gateway_url,
        tenant.secret,
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
        demo={"completion_tokens": 20},
    )
    events = [line for line in response.text.splitlines() if line.startswith("data: {")]
    assert f'"cost":{cost_of(PROMPT, 20).normalize():f}' in events[-1]
    assert response.text.rstrip().endswith("data: [DONE]")


def test_upstream_failure_costs_nothing(catalog, gateway_url):
    tenant = tenant_with("Unlucky", credit="1")
    provider = Provider.objects.create(name="gone", base_url=f"http://127.0.0.1:{free_port()}/v1")
    model = Model.objects.create(name="gone-model", input_price_per_mtok=Decimal(1))
    Deployment.objects.create(model=model, provider=provider, upstream_model="x")
    assert chat(gateway_url, tenant.secret, model="gone-model").status_code == 502
    after = chat(gateway_url, tenant.secret, max_tokens=5, demo={"completion_tokens": 5})
    assert Decimal(after.headers["x-credits-remaining"]) == Decimal(1) - cost_of(PROMPT, 5)
    ingest_everything()
    assert UsageRecord.objects.filter(organization=tenant.organization).count() == 1


def test_client_that_leaves_mid_stream_pays_for_what_was_generated(
    catalog, gateway_url, demo_upstream
):
    tenant = tenant_with("Leaver", credit="1")
    demo_upstream.reset_stats()
    body = {
        "messages": HELLO,
        "max_tokens": 200,
        "stream": True,
        "demo": {"completion_tokens": 200, "inter_token_ms": 30},
    }
    received = []
    with httpx2.stream(
        "POST",
        gateway_url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {tenant.secret}"},
    ) as response:
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                received.append(line)
            if len(received) == 10:
                break
    deadline_reached = wait_for_usage_row(tenant.organization.pk)
    record = UsageRecord.objects.get(organization=tenant.organization)
    assert deadline_reached is False
    assert record.status == "cancelled"
    assert 10 <= record.completion_tokens <= 14
    assert record.cost == cost_of(record.prompt_tokens, record.completion_tokens)
    assert demo_upstream.stats()["streams_cancelled"] == 1


def wait_for_usage_row(org_id: int) -> bool:
    """Ingest until the organization's usage row exists; True if 10 s passed first."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ingest_pending(consumer="test", claim_idle_ms=0)
        if UsageRecord.objects.filter(organization_id=org_id).exists():
            return False
        time.sleep(0.05)
    return True


def test_post_paid_organization_stops_at_minus_its_credit_limit(catalog, gateway_url):
    tenant = tenant_with("Postpaid", credit="0")
    tenant.organization.billing_mode = BillingMode.POSTPAID
    tenant.organization.credit_limit = cost_of(PROMPT, 100) * 2
    tenant.organization.save()
    body = {"max_tokens": 100, "demo": {"completion_tokens": 100}}
    statuses = [chat(gateway_url, tenant.secret, **body).status_code for _ in range(3)]
    assert statuses == [200, 200, 402]
    ingest_everything()
    assert ledger_balance(tenant.organization) == -cost_of(PROMPT, 100) * 2


def test_hold_of_a_dead_worker_is_released_after_its_lifetime(catalog):
    """A request admitted but never settled (its worker died) gives its hold back."""
    tenant = tenant_with("Orphan", credit="1")
    client = sync_redis()
    org = tenant.organization.pk
    tag = tenant_tag(org)
    credit, holds, deadlines = f"{tag}:credit", f"{tag}:holds", f"{tag}:hold_deadlines"
    client.set(credit, MONEY_UNITS_PER_USD)  # 1 USD, as seeded from the ledger
    client.hset(holds, "req_dead", 5000)
    client.zadd(deadlines, {"req_dead": 0})  # expired long ago
    client.decrby(credit, 5000)
    from apps.gateway.admission import ADMIT_SCRIPT, admit_keys

    admit = client.register_script(ADMIT_SCRIPT.source)
    keys = admit_keys(org, 1)
    assert (keys[3], keys[4], keys[5]) == (credit, holds, deadlines)
    args = ["req_new", 0, 0, 0, 0, 0, 0, 10, 10, 1, "0", "0", 0, 1, 900, 900, 0, 0, 1]
    verdict = admit(keys=list(keys), args=args)
    assert verdict[0] == 1
    assert int(client.get(credit)) == MONEY_UNITS_PER_USD  # released 5000, held 0 (free model)
    assert client.hkeys(holds) == [b"req_new"]


def test_a_reused_client_request_id_never_merges_charges(catalog, gateway_url):
    tenant = tenant_with("SameId", credit="1")
    headers = {"Authorization": f"Bearer {tenant.secret}", "x-request-id": "my-trace-1"}
    body = {"messages": HELLO, "max_tokens": 5, "demo": {"completion_tokens": 5}}
    responses = [
        httpx2.post(gateway_url + "/v1/chat/completions", headers=headers, json=body)
        for _ in range(3)
    ]
    assert [r.headers["x-request-id"] for r in responses] == ["my-trace-1"] * 3
    ours = {r.headers["x-tollgate-request-id"] for r in responses}
    assert len(ours) == 3
    ingest_everything()
    records = UsageRecord.objects.filter(organization=tenant.organization)
    assert set(records.values_list("request_id", flat=True)) == ours
    assert ledger_balance(tenant.organization) == Decimal(1) - 3 * cost_of(PROMPT, 5)


def test_a_repeated_settlement_changes_nothing_and_its_marker_is_short_lived(catalog, gateway_url):
    from django.conf import settings

    from apps.gateway.admission import SETTLE_SCRIPT, settle_keys, settled_marker_lifetime_s
    from apps.hotstate.keyspace import credit_available, settled_marker, token_buckets
    from apps.keys.models import APIKey

    tenant = tenant_with("Retried", credit="1", tpm=100_000, max_concurrent=5)
    response = chat(gateway_url, tenant.secret, max_tokens=50)
    assert response.status_code == 200
    org = tenant.organization.pk
    request_id = response.headers["x-request-id"]  # ours: the client sent none
    marker = settled_marker(org, request_id)
    client = sync_redis()
    # Settlement runs right after the answer went out.
    poll(lambda: client.exists(marker), bool, 5, "the request to be settled")
    lifetime = settled_marker_lifetime_s(settings.REDIS_SETTLE_TIMEOUT_S)
    assert lifetime <= 300  # bounded by the retries, not a day per request
    assert 0 < client.ttl(marker) <= lifetime
    credit, buckets = client.get(credit_available(org)), client.hgetall(token_buckets(org))

    # The same settlement again, as a retry after a lost reply would send it: a no-op.
    key = APIKey.objects.get(organization_id=org)
    args = [request_id, 40, 100_000, 0, 12_345, key.pk, 5, 960, lifetime]
    settle = client.register_script(SETTLE_SCRIPT.source)
    assert settle(keys=[*settle_keys(org), marker], args=args) == 1
    assert client.get(credit_available(org)) == credit
    assert client.hgetall(token_buckets(org)) == buckets
