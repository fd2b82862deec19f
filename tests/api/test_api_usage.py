"""Usage through the management API: filtered rows and their totals."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from apps.keys.services import create_api_key
from apps.metering.models import UsageRecord
from tests.api.support import error_of, url

pytestmark = pytest.mark.django_db

DAY_ONE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
request_ids = count(1)


def usage(key, *, model="default", cost="0.0000123400", at=DAY_ONE, status="ok", prompt=100):
    return UsageRecord.objects.create(
        request_id=f"req-{next(request_ids)}",
        organization_id=key.organization_id,
        key=key,
        model=model,
        deployment_id=1,
        prompt_tokens=prompt,
        completion_tokens=20,
        input_price_per_mtok=Decimal("0.1"),
        output_price_per_mtok=Decimal("0.4"),
        cost=Decimal(cost),
        status=status,
        stream=False,
        started_at=at,
        finished_at=at + timedelta(milliseconds=900),
        latency_ms=900,
    )


@pytest.fixture
def history(labs, charlie_co):
    """Two keys of Alice Labs over two days and two models, and Charlie Co's own row."""
    ci, _ = create_api_key(labs, name="ci")
    web, _ = create_api_key(labs, name="web")
    theirs, _ = create_api_key(charlie_co, name="theirs")
    usage(ci, model="default", cost="0.0000100000")
    usage(ci, model="small", cost="0.0000050000", at=DAY_ONE + timedelta(hours=1))
    usage(web, model="default", cost="0.0000200000", at=DAY_ONE + timedelta(days=1))
    usage(web, model="default", cost="0", at=DAY_ONE + timedelta(days=1, hours=1), status="failed")
    usage(theirs, model="default", cost="9.0000000000")
    return {"ci": ci, "web": web}


def test_members_list_usage_newest_first(labs, bob, history):
    response = bob.client.get(url(labs, "usage/"))

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["key_id"], r["model"], r["cost"]) for r in rows] == [
        (history["web"].pk, "default", "0.0000000000"),
        (history["web"].pk, "default", "0.0000200000"),
        (history["ci"].pk, "small", "0.0000050000"),
        (history["ci"].pk, "default", "0.0000100000"),
    ]
    assert rows[0]["input_price_per_mtok"] == "0.1000000000"
    assert rows[0]["status"] == "failed"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("model=small", 1),
        ("status=failed", 1),
        ("since=2026-03-02", 2),
        ("until=2026-03-02", 2),
        ("since=2026-03-01T10:30:00Z&until=2026-03-02T10:30:00Z", 2),
    ],
)
def test_usage_filters(labs, bob, history, query, expected):
    response = bob.client.get(url(labs, f"usage/?{query}"))

    assert response.status_code == 200
    assert len(response.json()["results"]) == expected


def test_usage_filter_by_key(labs, bob, history):
    response = bob.client.get(url(labs, f"usage/?key={history['ci'].pk}"))

    assert {row["key_id"] for row in response.json()["results"]} == {history["ci"].pk}


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("since=yesterday", "since"),
        ("since=2026-03-02&until=2026-03-01", "until"),
        ("key=abc", "key"),
        ("status=great", "status"),
        ("group_by=model", "group_by"),
    ],
)
def test_invalid_usage_filters_are_422(labs, bob, query, param):
    response = bob.client.get(url(labs, f"usage/?{query}"))

    assert response.status_code == 422
    assert error_of(response)["param"] == param


def test_usage_is_paginated(labs, bob, history):
    first = bob.client.get(url(labs, "usage/?limit=3")).json()
    second = bob.client.get(first["next"]).json()

    assert len(first["results"]) == 3
    assert len(second["results"]) == 1
    assert second["next"] is None


def test_summary_totals_only_this_organization(labs, bob, history):
    response = bob.client.get(url(labs, "usage/summary/"))

    assert response.status_code == 200
    assert response.json() == {
        "since": None,
        "until": None,
        "group_by": None,
        "totals": {
            "requests": 4,
            "prompt_tokens": 400,
            "completion_tokens": 80,
            "cost": "0.0000350000",
        },
        "groups": [],
    }


def test_summary_by_model_within_a_range(labs, bob, history):
    response = bob.client.get(
        url(labs, "usage/summary/?group_by=model&since=2026-03-01&until=2026-03-02")
    )

    body = response.json()
    assert body["since"] == "2026-03-01T00:00:00Z"
    assert body["totals"]["cost"] == "0.0000150000"
    assert [(g["group"], g["requests"], g["cost"]) for g in body["groups"]] == [
        ("default", 1, "0.0000100000"),
        ("small", 1, "0.0000050000"),
    ]


def test_summary_by_day_and_by_key(labs, bob, history):
    by_day = bob.client.get(url(labs, "usage/summary/?group_by=day")).json()["groups"]
    by_key = bob.client.get(url(labs, "usage/summary/?group_by=key")).json()["groups"]

    assert [(g["group"], g["requests"]) for g in by_day] == [("2026-03-01", 2), ("2026-03-02", 2)]
    assert [(g["group"], g["cost"]) for g in by_key] == [
        (str(history["ci"].pk), "0.0000150000"),
        (str(history["web"].pk), "0.0000200000"),
    ]


def test_summary_of_nothing_is_zero(labs, bob):
    totals = bob.client.get(url(labs, "usage/summary/")).json()["totals"]

    assert totals == {
        "requests": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": "0.0000000000",
    }


def test_outsiders_get_404_for_usage(labs, charlie, history):
    assert charlie.client.get(url(labs, "usage/")).status_code == 404
    assert charlie.client.get(url(labs, "usage/summary/")).status_code == 404


def test_another_organizations_key_filters_to_nothing(labs, charlie_co, bob, history):
    foreign = UsageRecord.objects.get(organization=charlie_co).key_id

    response = bob.client.get(url(labs, f"usage/?key={foreign}"))

    assert response.json()["results"] == []
