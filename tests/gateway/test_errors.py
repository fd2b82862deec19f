"""Every /v1 error arrives OpenAI-shaped, with the right status and the SDK's exception class."""

import httpx2
import openai
import pytest

from apps.catalog.models import Deployment, Model, Provider
from apps.demo_upstream.options import DemoOptions
from apps.demo_upstream.server import DemoUpstreamThread
from apps.keys.services import create_api_key

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]


def error_of(exc_info: pytest.ExceptionInfo[openai.APIStatusError]) -> dict:
    return exc_info.value.body if "message" in exc_info.value.body else exc_info.value.body["error"]


def test_body_that_is_not_a_json_object_is_400(alice, client_for):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(alice.secret).post(
            "/chat/completions", body=["not", "an", "object"], cast_to=object
        )
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"


def test_unknown_key_is_401(alice, client_for):
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for("tg_live_" + "x" * 40).chat.completions.create(model="default", messages=HELLO)
    assert caught.value.type == "authentication_error"
    assert caught.value.code == "invalid_api_key"


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer short", "Bearer"])
def test_missing_or_malformed_key_is_401(alice, gateway_url, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx2.post(
        gateway_url + "/v1/chat/completions", json={"messages": HELLO}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_model_not_allowed_for_the_key_is_403(alice, client_for):
    _, secret = create_api_key(alice.organization, allowed_models=["small"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client_for(secret).chat.completions.create(model="default", messages=HELLO)
    assert caught.value.type == "permission_error"
    assert caught.value.param == "model"


def test_unknown_and_disabled_models_are_404(alice, client_for):
    client = client_for(alice.secret)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert caught.value.code == "model_not_found"
    Model.objects.filter(name="small").update(enabled=False)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="small", messages=HELLO)


def test_body_over_the_limit_is_413(alice, client_for):
    huge = [{"role": "user", "content": "a" * (2 * 1024 * 1024 + 1)}]
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(alice.secret).chat.completions.create(model="default", messages=huge)
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 128001}, "max_tokens"),
        ({"n": 129}, "n"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"presence_penalty": -2.5}, "presence_penalty"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stream": "yes"}, "stream"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id"),
        ({"tools": [{"type": "function"}]}, "tools[0].function.name"),
        ({"temperature": True}, "temperature"),
    ],
)
def test_type_and_range_errors_are_422_naming_the_field(alice, client_for, changes, param):
    body = {"model": "default", "messages": HELLO, **changes}
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client_for(alice.secret).post("/chat/completions", body=body, cast_to=object)
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param == param


def test_upstream_4xx_passes_through_with_its_status_and_message(alice, client_for):
    with DemoUpstreamThread(DemoOptions(context_window=20)) as tiny:
        provider = Provider.objects.create(name="tiny", base_url=tiny.base_url)
        model = Model.objects.create(name="tiny-context")
        Deployment.objects.create(model=model, provider=provider, upstream_model="demo-small")
        with pytest.raises(openai.BadRequestError) as caught:
            client_for(alice.secret).chat.completions.create(
                model="tiny-context", messages=[{"role": "user", "content": "word " * 100}]
            )
    assert caught.value.code == "context_length_exceeded"
    assert "context" in caught.value.message


def test_unknown_path_and_wrong_method(alice, gateway_url):
    headers = {"Authorization": f"Bearer {alice.secret}"}
    unknown = httpx2.get(gateway_url + "/v1/embeddings-typo", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_url"
    wrong = httpx2.get(gateway_url + "/v1/chat/completions", headers=headers)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


def test_request_id_is_kept_when_sane_and_replaced_when_not(alice, gateway_url):
    headers = {"Authorization": f"Bearer {alice.secret}"}
    url = gateway_url + "/v1/models"
    kept = httpx2.get(url, headers={**headers, "x-request-id": "trace-42.a:b"})
    assert kept.headers["x-request-id"] == "trace-42.a:b"
    assert kept.headers["x-tollgate-request-id"].startswith("req_")
    replaced = httpx2.get(url, headers={**headers, "x-request-id": "bad id <script>"})
    assert replaced.headers["x-request-id"].startswith("req_")
    error = httpx2.get(url)
    assert error.status_code == 401
    assert error.headers["x-request-id"].startswith("req_")


def test_other_paths_are_served_by_django(gateway_url):
    response = httpx2.get(gateway_url + "/admin/login/")
    assert response.status_code == 200
    assert "Django" in response.text or "Log in" in response.text
