"""Tenant isolation: a user of organization A gets 404 for every page and object of B.

The URL list is read from apps/dashboard/urls.py, so a new organization page is covered (and
must be given an object below if it takes one) without editing this test."""

from datetime import timedelta

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone

from apps.dashboard.urls import org_patterns
from apps.keys.models import APIKey
from apps.tenants.models import Invitation, Role
from tests.dashboard.conftest import Persona, make_key

pytestmark = pytest.mark.django_db

ORG_URL_NAMES = sorted(pattern.name for pattern in org_patterns if isinstance(pattern, URLPattern))


def _objects_of(persona: Persona) -> dict[str, int]:
    """One object of each kind an organization URL can name, owned by `persona`'s org."""
    invitation = Invitation.objects.create(
        organization=persona.org,
        email=f"guest-of-{persona.org.pk}@example.com",
        role=Role.MEMBER,
        token_hash=f"{persona.org.pk:064d}",
        expires_at=timezone.now() + timedelta(days=1),
    )
    return {
        "key_id": make_key(persona.org).pk,
        "membership_id": persona.membership.pk,
        "invitation_id": invitation.pk,
    }


def _url(name: str, org_id: int, objects: dict[str, int]) -> str:
    pattern = next(p for p in org_patterns if p.name == name)
    kwargs = {k: objects[k] for k in pattern.pattern.converters}
    return reverse(f"dashboard:{name}", kwargs={"org_id": org_id, **kwargs})


def _assert_unchanged(charlie: Persona) -> None:
    """Nothing of Charlie Co was changed by the requests."""
    charlie.org.refresh_from_db()
    assert charlie.org.name == "Charlie Co"
    assert charlie.org.memberships.get().role == Role.OWNER
    assert not APIKey.objects.filter(organization=charlie.org, revoked_at__isnull=False).exists()
    assert APIKey.objects.filter(organization=charlie.org).count() == 1
    assert Invitation.objects.filter(organization=charlie.org, revoked_at__isnull=True).count() == 1


@pytest.mark.parametrize("name", ORG_URL_NAMES)
def test_every_page_of_another_organization_is_404(
    name: str, alice: Persona, charlie: Persona
) -> None:
    theirs = _objects_of(charlie)
    url = _url(name, charlie.org.pk, theirs)
    assert alice.client.get(url).status_code in {404, 405}, url
    assert alice.client.post(url, {"name": "Taken over", "role": "member"}).status_code in {
        404,
        405,
    }, url
    _assert_unchanged(charlie)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in ORG_URL_NAMES
        if "_id>" in str(next(p for p in org_patterns if p.name == n).pattern)
    ],
)
def test_objects_of_another_organization_are_404_under_ones_own(
    name: str, alice: Persona, charlie: Persona
) -> None:
    theirs = _objects_of(charlie)
    url = _url(name, alice.org.pk, theirs)
    assert alice.client.get(url).status_code in {404, 405}, url
    assert alice.client.post(url, {"role": "member"}).status_code == 404, url
    _assert_unchanged(charlie)


def test_every_organization_url_is_covered(alice: Persona) -> None:
    """GET-only or POST-only, each organization URL answers 404 for a non-member above."""
    assert len(ORG_URL_NAMES) == len(org_patterns)
    assert {"overview", "keys", "usage", "usage_csv", "billing", "settings"} <= set(ORG_URL_NAMES)


def test_a_post_only_url_of_another_organization_is_404_not_405(
    alice: Persona, charlie: Persona
) -> None:
    """A 405 would confirm the organization exists: membership is checked first where it
    matters, on the method the URL accepts."""
    for name in ("create_key", "playground_key", "rename", "invite"):
        url = _url(name, charlie.org.pk, {})
        assert alice.client.post(url, {"name": "x"}).status_code == 404, url


def test_non_members_and_unknown_organizations_look_the_same(alice: Persona) -> None:
    assert alice.client.get(reverse("dashboard:overview", args=[999_999])).status_code == 404


def test_the_switcher_lists_only_the_users_organizations(alice: Persona, charlie: Persona) -> None:
    text = alice.client.get(reverse("dashboard:overview", args=[alice.org.pk])).content.decode()
    assert "Alice Labs" in text
    assert "Charlie Co" not in text
