"""Balance and ledger through the management API. Money is a decimal string, never a float."""

from decimal import Decimal

import pytest

from apps.ledger.services import grant_credits
from apps.tenants.models import BillingMode
from tests.api.support import error_of, url

pytestmark = pytest.mark.django_db


def test_members_see_the_balance_as_exact_strings(labs, bob):
    grant_credits(labs, Decimal("0.0000000001"), reason="a tenth of a nano-dollar")

    response = bob.client.get(url(labs, "balance/"))

    assert response.status_code == 200
    assert response.json() == {
        "currency": "USD",
        "balance": "100.0000000001",
        "billing_mode": "prepaid",
        "credit_limit": "0.0000000000",
        "available": "100.0000000001",
    }


def test_postpaid_organizations_may_spend_below_zero(labs, bob):
    labs.billing_mode = BillingMode.POSTPAID
    labs.credit_limit = Decimal(50)
    labs.save()

    body = bob.client.get(url(labs, "balance/")).json()

    assert (body["balance"], body["available"]) == ("100.0000000000", "150.0000000000")


def test_members_list_the_ledger_newest_first(labs, bob):
    grant_credits(labs, Decimal("-2.5"), reason="correction")

    response = bob.client.get(url(labs, "ledger/"))

    assert response.status_code == 200
    rows = [(e["kind"], e["amount"], e["memo"]) for e in response.json()["results"]]
    assert rows == [
        ("adjustment", "-2.5000000000", "correction"),
        ("grant", "100.0000000000", "welcome credit"),
    ]


def test_the_ledger_filters_by_kind_and_time(labs, bob):
    grant_credits(labs, Decimal("-1"), reason="correction")

    grants = bob.client.get(url(labs, "ledger/?kind=grant")).json()["results"]
    future = bob.client.get(url(labs, "ledger/?since=2999-01-01")).json()["results"]
    bad = bob.client.get(url(labs, "ledger/?kind=gift"))

    assert [e["kind"] for e in grants] == ["grant"]
    assert future == []
    assert bad.status_code == 422
    assert error_of(bad)["param"] == "kind"


def test_the_ledger_is_paginated(labs, bob):
    for number in range(3):
        grant_credits(labs, Decimal(number + 1), reason=f"grant {number}")

    first = bob.client.get(url(labs, "ledger/?limit=2")).json()
    second = bob.client.get(first["next"]).json()

    assert [e["memo"] for e in first["results"] + second["results"]] == [
        "grant 2",
        "grant 1",
        "grant 0",
        "welcome credit",
    ]


def test_outsiders_get_404_for_money(labs, charlie):
    assert charlie.client.get(url(labs, "balance/")).status_code == 404
    assert charlie.client.get(url(labs, "ledger/")).status_code == 404
