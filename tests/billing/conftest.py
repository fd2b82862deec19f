"""Billing fixtures: the fake Stripe on a loopback port wired into settings, Celery tasks run
inline, and personas — in Acme, alice owns, adam is an admin and mike a member; bob owns
Globex and is nobody in Acme."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from apps.billing import webhooks
from apps.billing.stripe_gateway import _cached_client
from apps.tenants.models import Membership, Organization, Role
from apps.tenants.services import create_organization
from config.celery import app as celery_app
from tests.billing.helpers import WEBHOOK_SECRET
from tests.support.fake_stripe import FakeStripe, serve


@pytest.fixture
def fake_stripe(settings: Any) -> Iterator[FakeStripe]:
    """A fresh fake Stripe, served and configured; no request it refused may go unnoticed."""
    fake = FakeStripe()
    with serve(fake) as url:
        settings.STRIPE_SECRET_KEY = fake.api_key
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_API_BASE = url
        settings.STRIPE_MAX_NETWORK_RETRIES = 1
        settings.STRIPE_READ_TIMEOUT_S = 5
        yield fake
    _cached_client.cache_clear()
    assert fake.refusals == [], f"the fake Stripe refused requests: {fake.refusals}"


@pytest.fixture
def no_stripe(settings: Any) -> None:
    """An installation without Stripe keys (the demo)."""
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_API_BASE = ""


@pytest.fixture(autouse=True)
def inline_tasks() -> Iterator[None]:
    """Celery tasks run in the calling thread (queued after commit, as in production)."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def held_events(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Stored events are not applied by a task: the test applies them, in its own order."""
    queued: list[int] = []
    monkeypatch.setattr(webhooks, "_queue", queued.append)
    return queued


@dataclass
class Personas:
    acme: Organization
    globex: Organization
    alice: Any  # owner of Acme
    adam: Any  # admin of Acme
    mike: Any  # member of Acme
    bob: Any  # owner of Globex, outsider to Acme


@pytest.fixture
def people(db: None) -> Personas:
    acme = create_organization("Acme", owner_email="alice@acme.example")
    globex = create_organization("Globex", owner_email="bob@globex.example")
    users = get_user_model().objects
    adam = users.create_user("adam@acme.example")
    mike = users.create_user("mike@acme.example")
    Membership.objects.create(organization=acme, user=adam, role=Role.ADMIN)
    Membership.objects.create(organization=acme, user=mike, role=Role.MEMBER)
    return Personas(
        acme=acme,
        globex=globex,
        alice=users.get(email="alice@acme.example"),
        adam=adam,
        mike=mike,
        bob=users.get(email="bob@globex.example"),
    )
