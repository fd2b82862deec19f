"""Upstream failures: 502, one retry on another deployment, no retry storm, errors mid-stream."""

from collections.abc import Iterator

import openai
import pytest

from apps.catalog.models import Deployment, Model, Provider
from apps.demo_upstream.options import DemoOptions
from apps.demo_upstream.server import DemoUpstreamThread
from tests.support.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def broken_upstream() -> Iterator[DemoUpstreamThread]:
    with DemoUpstreamThread(DemoOptions(fail_status=503)) as upstream:
        yield upstream


def add_model(name: str, *deployments: tuple[str, str, int]) -> Model:
    model = Model.objects.create(name=name)
    for provider_name, base_url, weight in deployments:
        provider, _ = Provider.objects.get_or_create(
            name=provider_name, defaults={"base_url": base_url, "timeout_s": 1}
        )
        Deployment.objects.create(
            model=model, provider=provider, upstream_model="demo-small", weight=weight
        )
    return model


def test_unreachable_upstream_is_502(alice, client_for):
    add_model("nowhere", ("closed-port", f"http://127.0.0.1:{free_port()}/v1", 1))
    with pytest.raises(openai.InternalServerError) as caught:
        client_for(alice.secret).chat.completions.create(model="nowhere", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.type == "upstream_error"
    assert "127.0.0.1" not in caught.value.message


def test_failing_upstreams_get_one_retry_and_no_more(alice, client_for, broken_upstream):
    with DemoUpstreamThread(DemoOptions(fail_status=500)) as other_broken:
        add_model(
            "all-broken",
            ("broken-a", broken_upstream.base_url, 1),
            ("broken-b", other_broken.base_url, 1),
        )
        with pytest.raises(openai.InternalServerError) as caught:
            client_for(alice.secret).chat.completions.create(model="all-broken", messages=HELLO)
        attempts = broken_upstream.stats()["requests"] + other_broken.stats()["requests"]
    assert caught.value.status_code == 502
    assert attempts == 2


def test_retry_lands_on_the_second_deployment(alice, client_for, broken_upstream, demo_upstream):
    add_model(
        "flaky",
        ("mostly-broken", broken_upstream.base_url, 1000),
        ("healthy", demo_upstream.base_url, 1),
    )
    demo_upstream.reset_stats()
    client = client_for(alice.secret)
    answers = [client.chat.completions.create(model="flaky", messages=HELLO) for _ in range(10)]
    assert [a.choices[0].finish_reason for a in answers] == ["stop"] * 10
    assert demo_upstream.stats()["requests"] == 10
    assert broken_upstream.stats()["requests"] >= 8  # tried first ~99.9% of the time


def test_streaming_retry_happens_before_the_first_byte(
    alice, client_for, broken_upstream, demo_upstream
):
    add_model(
        "flaky-stream",
        ("mostly-broken", broken_upstream.base_url, 1000),
        ("healthy", demo_upstream.base_url, 1),
    )
    stream = client_for(alice.secret).chat.completions.create(
        model="flaky-stream", messages=HELLO, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert len(text.split()) == 12


def test_error_after_the_stream_started_is_a_final_error_event(alice, client_for, demo_upstream):
    add_model("stalls", ("stalling", demo_upstream.base_url, 1))  # provider read timeout: 1 s
    stream = client_for(alice.secret).chat.completions.create(
        model="stalls",
        messages=HELLO,
        stream=True,
        extra_body={"demo": {"inter_token_ms": 1500}},
    )
    received = []
    iterator = iter(stream)
    received.append(next(iterator))  # the stream began
    with pytest.raises(openai.APIError) as caught:
        received.extend(iterator)
    assert "stopped answering" in caught.value.message
    words = "".join(c.choices[0].delta.content or "" for c in received if c.choices).split()
    assert len(words) < 12  # the upstream stalled before the answer was complete
