"""The Content-Security-Policy, and pages that keep to it: no inline script or style."""

import re

import pytest
from django.urls import reverse

from apps.dashboard.csp import POLICY
from tests.dashboard.conftest import Persona

pytestmark = pytest.mark.django_db

CSP_MIDDLEWARE = "apps.dashboard.csp.ContentSecurityPolicyMiddleware"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
INLINE_STYLE = re.compile(r"<style\b|\sstyle=|\son[a-z]+=", re.IGNORECASE)


@pytest.fixture
def with_csp(settings) -> None:
    if CSP_MIDDLEWARE not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, CSP_MIDDLEWARE]


def _pages(persona: Persona) -> list[str]:
    org = persona.org.pk
    names = ("overview", "keys", "usage", "billing", "playground", "settings", "leave")
    return [
        *(reverse(f"dashboard:{name}", args=[org]) for name in names),
        reverse("dashboard:models"),
        reverse("dashboard:organizations"),
    ]


ANONYMOUS_PAGES = ("accounts:login", "accounts:signup", "accounts:password_reset")


@pytest.mark.usefixtures("with_csp")
def test_every_page_has_the_policy_and_no_inline_code(client, alice: Persona) -> None:
    for url in _pages(alice):
        response = alice.client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Security-Policy"] == POLICY
        text = response.content.decode()
        assert not INLINE_SCRIPT.findall(text), url
        assert not INLINE_STYLE.findall(text), url
    for name in ANONYMOUS_PAGES:
        text = client.get(reverse(name)).content.decode()
        assert not INLINE_SCRIPT.findall(text), name
        assert not INLINE_STYLE.findall(text), name


def test_the_policy_allows_only_this_origin() -> None:
    assert "script-src 'self'" in POLICY
    assert "style-src 'self'" in POLICY
    assert "unsafe" not in POLICY
    assert "frame-ancestors 'none'" in POLICY


def test_every_form_carries_a_csrf_token(alice: Persona) -> None:
    for url in _pages(alice):
        text = alice.client.get(url).content.decode()
        post_forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", text, re.S)
        for body in post_forms:
            assert 'name="csrfmiddlewaretoken"' in body, url
