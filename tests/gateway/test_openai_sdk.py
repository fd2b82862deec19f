"""The official OpenAI SDK against the live gateway: the API behaves like OpenAI's."""

import openai
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_non_streaming_completion_is_relabelled_with_the_public_model(alice, client_for):
    completion = client_for(alice.secret).chat.completions.create(
        model="default", messages=QUESTION
    )
    assert completion.object == "chat.completion"
    assert completion.model == "default"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 12
    assert len(completion.choices[0].message.content.split()) == 12


def test_streamed_content_equals_the_non_streamed_content(alice, client_for):
    client = client_for(alice.secret)
    whole = client.chat.completions.create(model="default", messages=QUESTION)
    chunks = list(client.chat.completions.create(model="default", messages=QUESTION, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert {chunk.model for chunk in chunks} == {"default"}
    assert all(chunk.usage is None for chunk in chunks)


def test_stream_keeps_the_usage_chunk_when_the_client_asks(alice, client_for):
    chunks = list(
        client_for(alice.secret).chat.completions.create(
            model="default",
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 12


def test_model_defaults_to_the_catalog_default(alice, gateway_url):
    import httpx2

    response = httpx2.post(
        gateway_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {alice.secret}"},
        json={"messages": QUESTION},
    )
    assert response.status_code == 200
    assert response.json()["model"] == "default"
    assert response.headers["x-request-id"].startswith("req_")


def test_tool_call_round_trip(alice, client_for):
    client = client_for(alice.secret)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            },
        }
    ]
    messages = [{"role": "user", "content": "What's the weather in London?"}]
    first = client.chat.completions.create(model="default", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny and 21 degrees"},
    ]
    second = client.chat.completions.create(model="default", messages=messages, tools=tools)
    assert second.choices[0].message.content.startswith("Tool result: Sunny")


def test_models_list_shows_only_what_the_key_may_use(alice, client_for):
    from apps.keys.services import create_api_key

    assert sorted(m.id for m in client_for(alice.secret).models.list()) == ["default", "small"]
    _, restricted = create_api_key(alice.organization, allowed_models=["small"])
    client = client_for(restricted)
    assert [m.id for m in client.models.list()] == ["small"]
    assert client.models.retrieve("small").id == "small"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("default")
