"""Every dashboard page renders for its users, with the figures it promises."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.dashboard.conftest import Persona, make_key, make_usage

pytestmark = pytest.mark.django_db

ORG_PAGES = ("overview", "keys", "usage", "billing", "playground", "settings")


@pytest.mark.parametrize("name", ORG_PAGES)
def test_every_organization_page_renders_for_owner_and_member(
    name: str, alice: Persona, bob: Persona
) -> None:
    url = reverse(f"dashboard:{name}", args=[alice.org.pk])
    for persona in (alice, bob):
        response = persona.client.get(url)
        assert response.status_code == 200, (persona.user.email, url)
        assert b"Alice Labs" in response.content


def test_public_models_page_lists_prices_per_million(client, models) -> None:
    response = client.get(reverse("dashboard:models"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "<code>default</code>" in text
    assert "$0.10" in text  # input price of `default` per million tokens
    assert "$0.40" in text
    assert "131,072" in text  # context window


def test_home_sends_anonymous_users_to_log_in_and_members_to_their_overview(
    client, alice: Persona
) -> None:
    assert client.get("/").url == reverse("accounts:login")
    assert alice.client.get("/").url == reverse("dashboard:overview", args=[alice.org.pk])


def test_organization_pages_ask_anonymous_users_to_log_in(client, alice: Persona) -> None:
    url = reverse("dashboard:overview", args=[alice.org.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:login')}?next={url}"


def test_overview_shows_balance_month_figures_and_recent_requests(alice: Persona) -> None:
    key = make_key(alice.org)
    make_usage(alice.org, key, cost="0.5", prompt_tokens=1000, completion_tokens=500)
    make_usage(alice.org, key, cost="0.25", model="small")
    response = alice.client.get(reverse("dashboard:overview", args=[alice.org.pk]))
    context = response.context
    assert context["balance"] == Decimal("100.0000000000")
    assert context["month"].spend == Decimal("0.75")
    assert context["month"].requests == 2
    assert len(context["recent"]) == 2
    series = context["series"]
    assert len(series.days) == 30
    assert series.spend[-1] == Decimal("0.75")
    assert series.tokens_by_model == {"default": [0] * 29 + [1500], "small": [0] * 29 + [120]}
    text = response.content.decode()
    assert 'id="chart-data"' in text
    assert "http://127.0.0.1:8000/v1" in text or "/v1" in text


def test_overview_first_call_snippets_use_the_public_base_url(alice: Persona, settings) -> None:
    settings.PUBLIC_BASE_URL = "https://llm.example.com"
    text = alice.client.get(reverse("dashboard:overview", args=[alice.org.pk])).content.decode()
    assert text.count("https://llm.example.com/v1") >= 4  # base URL, curl, Python, JavaScript
    assert 'base_url="https://llm.example.com/v1"' in text
    assert 'baseURL: "https://llm.example.com/v1"' in text


def test_month_figures_leave_out_last_month(alice: Persona) -> None:
    key = make_key(alice.org)
    now = timezone.now().astimezone(UTC)
    first_of_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    make_usage(alice.org, key, cost="1", started_at=first_of_month - timedelta(seconds=1))
    make_usage(alice.org, key, cost="2", started_at=first_of_month)
    month = alice.client.get(reverse("dashboard:overview", args=[alice.org.pk])).context["month"]
    assert (month.spend, month.requests) == (Decimal(2), 1)


def test_billing_shows_balance_and_ledger_newest_first(alice: Persona) -> None:
    from apps.ledger.services import grant_credits

    grant_credits(alice.org, Decimal("5"), reason="second grant")
    response = alice.client.get(reverse("dashboard:billing", args=[alice.org.pk]))
    assert response.context["balance"] == Decimal("105.0000000000")
    memos = [entry.memo for entry in response.context["page"].object_list]
    assert memos == ["second grant", "test credit"]


def test_organization_list_creates_an_organization_owned_by_the_user(alice: Persona) -> None:
    response = alice.client.post(reverse("dashboard:organizations"), {"name": "Alice Two"})
    membership = alice.user.memberships.get(organization__name="Alice Two")
    assert membership.role == "owner"
    assert response.url == reverse("dashboard:overview", args=[membership.organization_id])


def test_billing_links_to_the_billing_apps_pages_for_managers(alice: Persona, bob: Persona) -> None:
    url = reverse("dashboard:billing", args=[alice.org.pk])
    links = alice.client.get(url).context["links"]
    assert links == [
        (f"/billing/{alice.org.pk}/buy/", "Buy credits"),
        (f"/billing/{alice.org.pk}/", "Auto-recharge and low-balance alerts"),
        (f"/billing/{alice.org.pk}/invoices/", "Invoices"),
    ]
    assert bob.client.get(url).context["links"] == []
