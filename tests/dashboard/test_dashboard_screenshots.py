"""Screenshots of every page at desktop (1280 x 800) and phone (390 x 844) width, for a person to
look at: test-artifacts/screenshots/<page>-<width>.png (the run prints the folder). Each page
must load without console errors (CSP violations included) and without horizontal scrolling
on a phone."""

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.keys.models import APIKey
from apps.keys.services import revoke_api_key
from apps.ledger.services import grant_credits
from apps.tenants.models import Membership, Organization, Role
from apps.tenants.services import create_organization, invite_member
from tests.dashboard.browser import DESKTOP, PHONE, ConsoleErrors, chromium, screenshot
from tests.dashboard.conftest import PASSWORD, make_key, make_usage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

OWNER = "maria@example.com"


def _seed() -> tuple[Organization, APIKey, Membership, str]:
    """An organization with a month of usage on two models, keys, members, an invitation."""
    organization = create_organization("Acme Research", owner_email=OWNER)
    owner = get_user_model().objects.get(email=OWNER)
    owner.set_password(PASSWORD)
    owner.email_verified_at = timezone.now()
    owner.save()
    create_organization("Acme Side Project", owner_email=OWNER)
    grant_credits(organization, Decimal("250"), reason="Welcome credit", actor=owner)
    grant_credits(organization, Decimal("-3.5"), reason="Correction of a duplicate top-up")
    production, staging = make_key(organization, "production"), make_key(organization, "staging")
    revoke_api_key(make_key(organization, "old laptop"))
    now = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for day in range(30):
        for hour in range(1 + day % 4):
            when = now - timedelta(days=day, hours=hour)
            make_usage(
                organization,
                production,
                started_at=when,
                cost=f"0.{day + 10}",
                prompt_tokens=900 + 40 * day,
                completion_tokens=300 + 7 * hour,
            )
            if day % 3 == 0:
                make_usage(
                    organization,
                    staging,
                    started_at=when,
                    model="small",
                    cost="0.02",
                    prompt_tokens=400,
                    completion_tokens=80,
                )
    member = get_user_model().objects.create_user("sam@example.com", PASSWORD)
    membership = Membership.objects.create(organization=organization, user=member, role=Role.MEMBER)
    _, token = invite_member(
        organization, email="new.hire@example.com", role=Role.ADMIN, invited_by=owner
    )
    return organization, production, membership, token


def _log_in(page: Page, base: str) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Email address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Research")


def _shoot(page: Page, name: str, width: str) -> None:
    page.wait_for_load_state("networkidle")
    screenshot(page, f"{name}-{width}")
    if width == "phone":
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways on a phone by {overflow}px"


def _anonymous_pages(page: Page, base: str, token: str, width: str) -> None:
    for name, path in (
        ("login", "/accounts/login/"),
        ("signup", "/accounts/signup/"),
        ("password-reset", "/accounts/password-reset/"),
        ("password-reset-sent", "/accounts/password-reset/sent/"),
        ("verify-failed", "/accounts/verify/not-a-token/"),
        ("models", "/models/"),
        ("invitation-anonymous", f"/invitations/{token}/accept"),
        ("invitation-invalid", "/invitations/tg_inv_unknown/accept"),
        ("not-found", "/no/such/page/"),
    ):
        page.goto(base + path)
        _shoot(page, name, width)


def _organization_pages(page: Page, base: str, seeded: tuple, width: str) -> None:
    organization, key, member, token = seeded
    org = f"/orgs/{organization.pk}"
    for name, path in (
        ("overview", f"{org}/"),
        ("keys", f"{org}/keys/"),
        ("key-revoke", f"{org}/keys/{key.pk}/revoke/"),
        ("usage", f"{org}/usage/"),
        ("usage-filtered", f"{org}/usage/?model=small"),
        ("billing", f"{org}/billing/"),
        ("settings", f"{org}/settings/"),
        ("member-remove", f"{org}/members/{member.pk}/remove/"),
        ("leave", f"{org}/settings/leave/"),
        ("organizations", "/orgs/"),
        ("invitation-other-user", f"/invitations/{token}/accept"),
    ):
        page.goto(base + path)
        _shoot(page, name, width)
    page.goto(base + f"{org}/keys/")
    page.get_by_label("Name").fill(f"new {width} key")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_label("New API key")).to_be_visible()
    _shoot(page, "key-created", width)
    page.goto(base + f"{org}/playground/")
    page.get_by_role("button", name="Use a temporary key").click()
    expect(page.locator("#pg-key-status")).to_contain_text("Using temporary key")
    page.get_by_label("Your message").fill("Write a haiku about toll roads.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("pg-usage")).to_contain_text("cost $", timeout=20_000)
    _shoot(page, "playground", width)


def test_screenshots_of_every_page(dashboard_url: str, catalog, demo_upstream) -> None:
    seeded = _seed()
    token = seeded[3]
    console = ConsoleErrors()
    with chromium() as browser:
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = browser.new_context(viewport=viewport)
            page = console.watch(context.new_page())
            _anonymous_pages(page, dashboard_url, token, width)
            _log_in(page, dashboard_url)
            _organization_pages(page, dashboard_url, seeded, width)
            context.close()
    # The pages about a bad verification link (400), a bad invitation (404) and a missing page
    # (404) log their status; nothing else may complain, CSP violations included.
    assert sorted(console.errors) == sorted(
        [
            f"Failed to load resource: the server responded with a status of {status}"
            for status in ("400 (Bad Request)", "404 (Not Found)", "404 (Not Found)")
        ]
        * 2
    )
