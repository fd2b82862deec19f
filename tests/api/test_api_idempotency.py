"""`Idempotency-Key`: a retried POST replays the first response; another body is a 409."""

import threading

import pytest
from django.db import connection
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from apps.api.idempotency import run_idempotently
from apps.api.models import IdempotencyRecord
from apps.api.services import purge_idempotency_records
from apps.keys.models import APIKey
from apps.tenants.models import Invitation
from tests.api.support import error_of, signed_in, url

pytestmark = pytest.mark.django_db


def test_a_retried_key_creation_replays_without_the_secret(labs, alice):
    first = alice.client.post(
        url(labs, "keys/"), {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="create-ci-1"
    )
    again = alice.client.post(
        url(labs, "keys/"), {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="create-ci-1"
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["secret"].startswith("tg_live_")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "secret": None}
    assert APIKey.objects.filter(organization=labs).count() == 1
    assert first.json()["secret"] not in str(IdempotencyRecord.objects.get().response_body)


def test_the_same_key_with_another_body_is_a_conflict(labs, alice):
    alice.client.post(url(labs, "keys/"), {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    response = alice.client.post(
        url(labs, "keys/"), {"name": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert response.status_code == 409
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert list(APIKey.objects.values_list("name", flat=True)) == ["a"]


def test_the_same_key_on_another_endpoint_is_a_conflict(labs, alice):
    alice.client.post(url(labs, "keys/"), {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    response = alice.client.post(
        url(labs, "tokens/"), {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert response.status_code == 409


def test_keys_are_per_organization(labs, charlie_co, alice, charlie):
    mine = alice.client.post(
        url(labs, "keys/"), {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    theirs = charlie.client.post(
        url(charlie_co, "keys/"), {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs
    assert APIKey.objects.count() == 2


def test_a_failed_request_keeps_nothing_so_the_key_can_be_retried(labs, alice):
    failed = alice.client.post(
        url(labs, "keys/"), {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    fixed = alice.client.post(
        url(labs, "keys/"), {"name": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )

    assert (failed.status_code, fixed.status_code) == (422, 201)
    assert IdempotencyRecord.objects.get().response_status == 201


def test_a_refused_caller_leaves_no_record(labs, bob):
    response = bob.client.post(
        url(labs, "keys/"), {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k3"
    )

    assert response.status_code == 403
    assert not IdempotencyRecord.objects.exists()


def test_invitations_are_idempotent_too(labs, alice):
    for _ in range(2):
        response = alice.client.post(
            url(labs, "invitations/"),
            {"email": "erin@example.com"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="invite-erin",
        )
        assert response.status_code == 201

    assert Invitation.objects.count() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "has space"])
def test_malformed_keys_are_422(labs, alice, key):
    response = alice.client.post(
        url(labs, "keys/"), {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 422
    assert error_of(response)["param"] == "Idempotency-Key"
    assert not APIKey.objects.exists()


def test_old_records_are_purged(labs, alice):
    from datetime import timedelta

    from django.utils import timezone

    alice.client.post(url(labs, "keys/"), {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    alice.client.post(url(labs, "keys/"), {"name": "y"}, format="json", HTTP_IDEMPOTENCY_KEY="new")

    assert purge_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_a_5xx_answer_is_not_kept_so_a_retry_runs_again(labs):
    django_request = APIRequestFactory().post(
        "/anything/", {"amount": "10"}, format="json", HTTP_IDEMPOTENCY_KEY="k5"
    )
    request = Request(django_request, parsers=[JSONParser()])
    calls = []

    def unavailable() -> Response:
        calls.append(1)
        return Response({"detail": "Stripe is down"}, status=502)

    first = run_idempotently(request, labs, unavailable)
    second = run_idempotently(request, labs, unavailable)

    assert (first.status_code, second.status_code, len(calls)) == (502, 502, 2)
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_create_one_key(labs, alice):
    results: list[int] = []
    start = threading.Barrier(4)

    def post() -> None:
        client = signed_in(alice.user)
        start.wait()
        try:
            response = client.post(
                url(labs, "keys/"), {"name": "race"}, format="json", HTTP_IDEMPOTENCY_KEY="race-1"
            )
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [201, 201, 201, 201]
    assert APIKey.objects.filter(organization=labs, name="race").count() == 1
