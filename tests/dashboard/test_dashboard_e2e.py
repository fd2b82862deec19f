"""End to end in headless Chromium against a live server: sign up → verify → key → copy →
a real /v1 call with the openai SDK → usage and balance → revoke → 401; an invitation
accepted in a second browser context; the playground streams under the strict CSP."""

import re
from decimal import Decimal

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from apps.metering.ingest import ingest_pending
from apps.metering.models import UsageRecord
from tests.dashboard.browser import (
    DESKTOP,
    ConsoleErrors,
    chromium,
    link_in_mail_to,
    off_loop,
)
from tests.dashboard.conftest import PASSWORD, PUBLIC_BASE_URL, WELCOME_CREDIT_USD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

DEVELOPER = "dev@example.com"
TEAMMATE = "teammate@example.com"


def _on_server(link: str, base: str) -> str:
    """A link from an email (on PUBLIC_BASE_URL) mapped to the live test server."""
    assert link.startswith(PUBLIC_BASE_URL + "/")
    return base + link.removeprefix(PUBLIC_BASE_URL)


def _sign_up(page: Page, base: str, email: str) -> None:
    page.goto(base + "/accounts/signup/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("organization"))


def _verify(page: Page, base: str, mailbox, email: str) -> None:
    link = link_in_mail_to(mailbox, email, PUBLIC_BASE_URL + "/accounts/verify/")
    page.goto(_on_server(link, base))
    expect(page.get_by_role("heading", level=1)).to_have_text("Email verified")


def _create_and_copy_key(page: Page, name: str) -> str:
    page.get_by_role("navigation", name=re.compile("organization")).get_by_role(
        "link", name="API keys"
    ).click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create key").click()
    secret_box = page.get_by_label("New API key")
    expect(secret_box).to_be_visible()
    page.get_by_role("button", name="Copy the new key to the clipboard").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == secret_box.input_value()
    assert copied.startswith("tg_live_")
    return copied


def _ingest_usage() -> UsageRecord:
    assert ingest_pending(consumer="test", claim_idle_ms=0) == 1
    return UsageRecord.objects.get()


def _balance_text(page: Page) -> str:
    return page.get_by_test_id("balance").inner_text()


def _new_context(browser, base: str) -> BrowserContext:
    context = browser.new_context(viewport=DESKTOP, base_url=base)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    return context


def test_sign_up_to_first_call_to_revocation(
    dashboard_url: str, mailbox, catalog, demo_upstream
) -> None:
    base = dashboard_url
    console = ConsoleErrors()
    with chromium() as browser:
        context = _new_context(browser, base)
        page = console.watch(context.new_page())
        _sign_up(page, base, DEVELOPER)
        expect(page.get_by_test_id("balance")).to_have_text(f"${WELCOME_CREDIT_USD}.00")
        _verify(page, base, mailbox, DEVELOPER)
        page.get_by_role("link", name="Go to your dashboard").click()
        secret = _create_and_copy_key(page, "first key")

        client = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0)
        answer = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Hello"}]
        )
        assert answer.choices[0].message.content
        usage = off_loop(_ingest_usage)
        assert usage.cost > 0

        page.get_by_role("link", name="Usage").click()
        table = page.get_by_role("table", name="Requests matching the filters")
        expect(table.locator("tbody tr")).to_have_count(1)
        expect(table).to_contain_text("first key")
        expect(table).to_contain_text(str(usage.prompt_tokens))
        page.get_by_label("Model", exact=True).select_option("default")  # htmx: no reload
        expect(page).to_have_url(re.compile(r"/usage/\?.*model=default"))
        expect(table.locator("tbody tr")).to_have_count(1)
        page.get_by_role("link", name="Billing").click()
        balance = Decimal(WELCOME_CREDIT_USD) - usage.cost
        assert _balance_text(page) != f"${WELCOME_CREDIT_USD}.00"
        expect(page.get_by_test_id("balance")).to_have_attribute(
            "title", f"{balance.quantize(Decimal('1e-10'))} USD"
        )

        page.get_by_role("link", name="API keys").click()
        page.get_by_role("link", name="Revoke first key").click()
        page.get_by_role("button", name="Revoke first key").click()
        expect(page.get_by_role("status")).to_contain_text("Revoked first key")
        with pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(
                model="default", messages=[{"role": "user", "content": "Hello"}]
            )
        assert refused.value.status_code == 401
        context.close()
    assert console.errors == []


def test_invitation_accepted_in_a_second_browser(dashboard_url: str, mailbox, catalog) -> None:
    base = dashboard_url
    console = ConsoleErrors()
    with chromium() as browser:
        owner_context = _new_context(browser, base)
        owner = console.watch(owner_context.new_page())
        _sign_up(owner, base, "lead@example.com")
        organization = owner.get_by_role("heading", level=1).inner_text()
        owner.get_by_role("link", name="Settings").click()
        invite = owner.get_by_role("region", name="Invite someone")
        invite.get_by_label("Email address").fill(TEAMMATE)
        invite.get_by_label("Role").select_option("admin")
        invite.get_by_role("button", name="Send invitation").click()
        expect(owner.get_by_role("status")).to_contain_text(f"Invitation sent to {TEAMMATE}")

        link = link_in_mail_to(mailbox, TEAMMATE, PUBLIC_BASE_URL + "/invitations/")
        assert link.endswith("/accept")
        guest_context = _new_context(browser, base)
        guest = console.watch(guest_context.new_page())
        guest.goto(_on_server(link, base))
        expect(guest.get_by_role("heading", level=1)).to_have_text(f"Join {organization}")
        guest.get_by_role("link", name="Create an account").click()
        expect(guest.get_by_label("Email address")).to_have_value(TEAMMATE)
        guest.get_by_label("Password").fill(PASSWORD)
        guest.get_by_role("button", name="Sign up").click()
        guest.get_by_role("button", name="Accept the invitation").click()
        expect(guest.get_by_role("heading", level=1)).to_have_text(organization)
        expect(guest.get_by_role("status")).to_contain_text(f"You joined {organization}")

        owner.reload()
        members = owner.get_by_role("table", name=re.compile("Members of"))
        expect(members).to_contain_text(TEAMMATE)
        expect(members.get_by_label(f"Role of {TEAMMATE}")).to_have_value("admin")
        owner_context.close()
        guest_context.close()
    assert console.errors == []


def test_playground_streams_an_answer_with_a_temporary_key(
    dashboard_url: str, mailbox, catalog, demo_upstream
) -> None:
    base = dashboard_url
    console = ConsoleErrors()
    with chromium() as browser:
        context = _new_context(browser, base)
        page = console.watch(context.new_page())
        _sign_up(page, base, "player@example.com")
        _verify(page, base, mailbox, "player@example.com")
        page.get_by_role("link", name="Go to your dashboard").click()
        page.get_by_role("link", name="Playground").click()
        page.get_by_role("button", name="Use a temporary key").click()
        expect(page.locator("#pg-key-status")).to_contain_text("Using temporary key tg_live_")
        page.get_by_label("Model", exact=True).select_option("default")
        page.get_by_label("Your message").fill("Tell me something")
        page.get_by_role("button", name="Send").click()
        usage = page.get_by_test_id("pg-usage")
        expect(usage).to_contain_text("completion tokens", timeout=20_000)
        expect(usage).to_contain_text("cost $")
        answer = page.locator("#pg-messages li.assistant .text")
        assert answer.inner_text().strip()
        context.close()
    assert console.errors == []
