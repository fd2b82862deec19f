"""The usage page's filters, and its CSV export: exactly the rows shown, exact amounts."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.dashboard.views.usage import CSV_COLUMNS, PAGE_SIZE
from tests.dashboard.conftest import Persona, make_key, make_usage

pytestmark = pytest.mark.django_db


def _csv(persona: Persona, query: str = "") -> list[list[str]]:
    url = reverse("dashboard:usage_csv", args=[persona.org.pk])
    response = persona.client.get(f"{url}?{query}")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="usage-')
    return list(csv.reader(io.StringIO(response.content.decode())))


def _page_request_ids(persona: Persona, query: str = "") -> list[str]:
    url = reverse("dashboard:usage", args=[persona.org.pk])
    return [row.request_id for row, _ in persona.client.get(f"{url}?{query}").context["rows"]]


def test_csv_has_the_rows_of_the_filtered_page_with_exact_costs(alice: Persona) -> None:
    first, second = make_key(alice.org, "first"), make_key(alice.org, "second")
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    wanted = make_usage(alice.org, first, started_at=when, cost="0.0000000123")
    make_usage(alice.org, second, started_at=when)  # other key
    make_usage(alice.org, first, started_at=when, model="small")  # other model
    make_usage(alice.org, first, started_at=when + timedelta(days=2))  # after the range
    query = f"key={first.pk}&model=default&start=2030-01-01&end=2030-01-03"
    rows = _csv(alice, query)
    assert rows == [
        list(CSV_COLUMNS),
        [
            "2030-01-02T03:04:05+00:00",
            wanted.request_id,
            str(first.pk),
            f"first ({first.prefix}…)",
            "default",
            "ok",
            "false",
            "100",
            "20",
            "0.0000000123",
            "250",
        ],
    ]
    assert _page_request_ids(alice, query) == [wanted.request_id]


def test_csv_follows_the_page_shown(alice: Persona) -> None:
    key = make_key(alice.org)
    start = timezone.now() - timedelta(hours=2)
    for second in range(PAGE_SIZE + 3):
        make_usage(alice.org, key, started_at=start + timedelta(seconds=second))
    for query in ("", "page=2"):
        shown = _page_request_ids(alice, query)
        exported = [row[1] for row in _csv(alice, query)[1:]]
        assert exported == shown
    assert len(_page_request_ids(alice, "page=2")) == 3


def test_usage_defaults_to_the_last_30_days(alice: Persona) -> None:
    key = make_key(alice.org)
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    inside = make_usage(alice.org, key, started_at=today - timedelta(days=29))
    make_usage(alice.org, key, started_at=today - timedelta(days=29, seconds=1))
    assert _page_request_ids(alice) == [inside.request_id]


def test_an_inverted_range_is_reported_and_the_default_shown(alice: Persona) -> None:
    url = reverse("dashboard:usage", args=[alice.org.pk])
    response = alice.client.get(f"{url}?start=2030-02-01&end=2030-01-01")
    assert "“From” must not be after “To”." in response.content.decode()
    assert (response.context["filters"].end - response.context["filters"].start).days == 29


def test_a_key_of_another_organization_is_not_a_valid_filter(
    alice: Persona, charlie: Persona
) -> None:
    theirs = make_key(charlie.org)
    make_usage(charlie.org, theirs)
    assert _csv(alice, f"key={theirs.pk}") == [list(CSV_COLUMNS)]
    assert _page_request_ids(alice, f"key={theirs.pk}") == []
