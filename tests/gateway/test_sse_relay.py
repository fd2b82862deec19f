"""The stream relay's line cutting: however the network splits the upstream's bytes, the client
gets the same re-labelled events, and an error event still lets the ones before it through."""

import orjson
import pytest

from apps.gateway.relay import Relabeller, SseLines, StreamOutcome

CHUNKS = [
    {"id": "c1", "model": "demo-small", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
    {"id": "c1", "model": "demo-small", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
    {"id": "c1", "model": "demo-small", "choices": [{"index": 0, "delta": {"content": " there"}}]},
]
BODY = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in CHUNKS) + b"data: [DONE]\n\n"


def relabeller() -> Relabeller:
    return Relabeller("public", client_wants_usage=False, price_usage=lambda _: "0")


def relay(pieces: list[bytes]) -> tuple[list[dict], bool, StreamOutcome]:
    lines, outcome, out, finished = SseLines(), StreamOutcome(), b"", False
    for piece in pieces:
        sent, finished = lines.rewrite(piece, relabeller(), outcome)
        out += sent
        if finished:
            break
    if not finished:
        out += lines.rewrite_rest(relabeller(), outcome)
    events = [orjson.loads(event[6:]) for event in out.split(b"\n\n") if event]
    return events, finished, outcome


@pytest.mark.parametrize("size", [1, 2, 7, 50, len(BODY)])
def test_any_split_of_the_body_relays_the_same_events(size):
    pieces = [BODY[i : i + size] for i in range(0, len(BODY), size)]

    events, finished, outcome = relay(pieces)

    assert finished
    assert [event["model"] for event in events] == ["public"] * 3
    assert [event["choices"] for event in events] == [chunk["choices"] for chunk in CHUNKS]
    assert outcome.generated_text() == ["Hi", " there"]


def test_crlf_lines_comments_and_a_last_line_without_a_break():
    body = b": keep-alive\r\n\r\n" + BODY.replace(b"\n", b"\r\n").removesuffix(
        b"data: [DONE]\r\n\r\n"
    )
    body = body.removesuffix(b"\r\n\r\n")  # the upstream closed right after the last event

    events, finished, _ = relay([body])

    assert not finished
    assert [event["choices"][0]["delta"] for event in events] == [
        {"role": "assistant"},
        {"content": "Hi"},
        {"content": " there"},
    ]


def test_an_error_event_ends_the_stream_after_the_events_before_it():
    error = b'data: {"error": {"message": "overloaded"}}\n\n'
    body = BODY.replace(b"data: [DONE]\n\n", error)

    events, finished, outcome = relay([body])

    assert finished
    assert len(events) == 3
    assert "overloaded" in (outcome.error or "")


def test_every_chunk_names_the_public_model_even_when_the_upstream_changes_its_spelling():
    body = (
        b'data: {"model": "demo-small", "choices": []}\n\n'
        b'data: {"model":"demo-small","choices":[]}\n\n'
        b'data: {"model":"demo-large","choices":[],"x":{"model":"demo-small"}}\n\n'
        b"data: [DONE]\n\n"
    )

    events, _, _ = relay([body])

    assert [event["model"] for event in events] == ["public"] * 3
    assert events[2]["x"] == {"model": "demo-small"}
