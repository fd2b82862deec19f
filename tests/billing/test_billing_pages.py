"""Billing pages and API: tenant isolation (404), roles (403), and what owners see and do."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from apps.billing.invoicing import close_period
from apps.billing.models import BillingProfile, TopUp
from apps.ledger.services import grant_credits
from tests.billing.usage_rows import ingest, usage_rows

pytestmark = pytest.mark.urls("tests.billing.urls")

SEPTEMBER = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
GET_PAGES = ["overview", "buy", "topup_done", "ledger", "invoices"]
INVOICE_PAGES = ["invoice", "invoice_html", "invoice_pdf"]
POST_PAGES = {
    "buy": {"amount": "25.00"},
    "recharge_settings": {"enabled": "", "threshold": "10", "amount": "20"},
    "low_balance_settings": {"threshold": "5"},
}
API_GETS = ["billing_api:topups", "billing_api:invoices"]
API_INVOICE_GETS = ["billing_api:invoice", "billing_api:invoice_pdf"]


@pytest.fixture
def acme_invoice(people):
    ingest(usage_rows(people.acme, 20, SEPTEMBER[0], timedelta(days=30)))
    return close_period(people.acme, *SEPTEMBER)[0].invoice


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(name: str, organization, *args: int) -> str:
    return reverse(f"billing_dashboard:{name}", args=[organization.pk, *args])


# --- isolation and roles ----------------------------------------------------------------------


@pytest.mark.parametrize("name", GET_PAGES)
def test_pages_of_another_organization_are_404(people, name):
    assert client_for(people.bob).get(page(name, people.acme)).status_code == 404


@pytest.mark.parametrize("name", INVOICE_PAGES)
def test_invoice_pages_of_another_organization_are_404(people, acme_invoice, name):
    assert client_for(people.bob).get(page(name, people.acme, acme_invoice.pk)).status_code == 404
    # …also through the outsider's own organization in the URL
    globex_url = page(name, people.globex, acme_invoice.pk)
    assert client_for(people.bob).get(globex_url).status_code == 404


@pytest.mark.parametrize(("name", "data"), POST_PAGES.items())
def test_posts_to_another_organization_are_404_and_change_nothing(people, name, data):
    response = client_for(people.bob).post(page(name, people.acme), data)

    assert response.status_code == 404
    assert not BillingProfile.objects.filter(pk=people.acme.pk).exists()
    assert TopUp.objects.count() == 0


@pytest.mark.parametrize("name", GET_PAGES)
def test_members_get_403(people, name):
    assert client_for(people.mike).get(page(name, people.acme)).status_code == 403


@pytest.mark.parametrize("name", INVOICE_PAGES)
def test_members_get_403_on_invoices(people, acme_invoice, name):
    url = page(name, people.acme, acme_invoice.pk)
    assert client_for(people.mike).get(url).status_code == 403


@pytest.mark.parametrize(("name", "data"), POST_PAGES.items())
def test_members_cannot_post(people, name, data):
    assert client_for(people.mike).post(page(name, people.acme), data).status_code == 403
    assert not BillingProfile.objects.filter(pk=people.acme.pk).exists()


@pytest.mark.parametrize("name", GET_PAGES)
def test_owners_and_admins_see_every_page(people, no_stripe, name):
    for user in (people.alice, people.adam):
        assert client_for(user).get(page(name, people.acme)).status_code == 200


@pytest.mark.parametrize("name", INVOICE_PAGES)
def test_owners_see_their_invoices(people, acme_invoice, name):
    response = client_for(people.alice).get(page(name, people.acme, acme_invoice.pk))
    assert response.status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(people):
    response = Client().get(page("overview", people.acme))
    assert response.status_code == 302
    assert "login" in response["Location"]


# --- what the pages do ------------------------------------------------------------------------


def test_the_overview_shows_the_exact_balance(people, no_stripe):
    grant_credits(people.acme, Decimal("12.3456789"), reason="test")

    response = client_for(people.alice).get(page("overview", people.acme))

    assert "12.3456789 USD" in response.content.decode()


def test_without_stripe_keys_the_buy_page_explains_what_to_configure(people, no_stripe):
    client = client_for(people.alice)

    shown = client.get(page("buy", people.acme)).content.decode()
    posted = client.post(page("buy", people.acme), {"amount": "25.00"})

    assert "STRIPE_SECRET_KEY" in shown
    assert "STRIPE_WEBHOOK_SECRET" in shown
    assert "/stripe/webhook" in shown
    assert posted.status_code == 503
    assert "STRIPE_SECRET_KEY" in posted.content.decode()
    assert TopUp.objects.count() == 0


def test_buying_sends_the_owner_to_stripe_checkout(people, fake_stripe):
    response = client_for(people.adam).post(page("buy", people.acme), {"amount": "25.00"})

    assert response.status_code == 303
    (session,) = fake_stripe.sessions.values()
    assert response["Location"] == session["url"]
    assert session["success_url"] == (
        "http://testserver" + page("topup_done", people.acme) + "?session_id={CHECKOUT_SESSION_ID}"
    )
    assert TopUp.objects.get().requested_by == people.adam


def test_an_amount_out_of_range_is_shown_back(people, fake_stripe):
    response = client_for(people.alice).post(page("buy", people.acme), {"amount": "1.00"})

    assert response.status_code == 400
    assert "between" in response.content.decode()
    assert fake_stripe.requests == []


def test_alert_settings_are_saved(people):
    response = client_for(people.alice).post(
        page("low_balance_settings", people.acme), {"threshold": "7.50"}
    )

    assert response.status_code == 302
    assert BillingProfile.objects.get(pk=people.acme.pk).low_balance_threshold == Decimal("7.5")


def test_auto_recharge_without_a_card_is_refused_with_a_message(people):
    response = client_for(people.alice).post(
        page("recharge_settings", people.acme),
        {"enabled": "on", "threshold": "10", "amount": "20"},
        follow=True,
    )

    assert "Save a card first" in response.content.decode()
    assert not BillingProfile.objects.filter(pk=people.acme.pk, auto_recharge_enabled=True).exists()


def test_the_pdf_downloads_as_an_attachment(people, acme_invoice):
    response = client_for(people.alice).get(page("invoice_pdf", people.acme, acme_invoice.pk))

    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="TG-000001.pdf"'
    assert response.content.startswith(b"%PDF-")


# --- management API ---------------------------------------------------------------------------


def api(name: str, organization, *args: int) -> str:
    return reverse(name, args=[organization.pk, *args])


@pytest.mark.parametrize("name", API_GETS)
def test_api_isolation_and_roles(people, name):
    assert client_for(people.bob).get(api(name, people.acme)).status_code == 404
    assert client_for(people.mike).get(api(name, people.acme)).status_code == 403
    assert client_for(people.alice).get(api(name, people.acme)).status_code == 200


@pytest.mark.parametrize("name", API_INVOICE_GETS)
def test_api_invoice_isolation_and_roles(people, acme_invoice, name):
    url = api(name, people.acme, acme_invoice.pk)
    assert client_for(people.bob).get(url).status_code == 404
    assert client_for(people.bob).get(api(name, people.globex, acme_invoice.pk)).status_code == 404
    assert client_for(people.mike).get(url).status_code == 403
    assert client_for(people.alice).get(url).status_code == 200


def test_api_unauthenticated_is_refused(people):
    assert Client().get(api("billing_api:invoices", people.acme)).status_code in (401, 403)


def test_api_posts_are_isolated_too(people, fake_stripe):
    url = api("billing_api:topups", people.acme)
    assert client_for(people.bob).post(url, {"amount": "25.00"}).status_code == 404
    assert client_for(people.mike).post(url, {"amount": "25.00"}).status_code == 403
    assert fake_stripe.requests == []


def test_api_creates_a_checkout(people, fake_stripe):
    response = client_for(people.alice).post(
        api("billing_api:topups", people.acme), {"amount": "30.00"}, content_type="application/json"
    )

    assert response.status_code == 201
    body = response.json()
    (session,) = fake_stripe.sessions.values()
    assert body["checkout_url"] == session["url"]
    assert (body["amount"], body["status"], body["source"]) == (
        "30.0000000000",
        "pending",
        "checkout",
    )


def test_api_without_stripe_keys_says_what_is_missing(people, no_stripe):
    response = client_for(people.alice).post(
        api("billing_api:topups", people.acme), {"amount": "30.00"}, content_type="application/json"
    )

    assert response.status_code == 503
    assert response.json()["missing_settings"] == ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"]


def test_api_invoice_has_exact_lines(people, acme_invoice):
    response = client_for(people.alice).get(
        api("billing_api:invoice", people.acme, acme_invoice.pk)
    )

    body = response.json()
    assert body["number"] == "TG-000001"
    assert body["total"] == format(acme_invoice.total, "f")
    assert sum(Decimal(line["amount"]) for line in body["lines"]) == acme_invoice.total
