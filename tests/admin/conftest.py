"""Staff personas for the admin tests.

- ``root``: a superuser; may do everything.
- ``fiona``: staff in the "finance" group; moves money, may not suspend or revoke.
- ``sam``: staff in the "support" group; suspends, revokes, views usage; may not move money.
- ``nick``: a developer with an organization of his own, not staff; the admin is closed to him.

``acme`` is a tenant with 100 USD, owned by owner@acme.example, with one API key.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from apps.accounts.models import User
from apps.keys.models import APIKey
from apps.keys.services import create_api_key
from apps.ledger.services import grant_credits
from apps.tenants.models import Organization
from apps.tenants.services import create_organization


def staff(email: str, group: str | None = None, *, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(email, "pw-not-used")
    user = User.objects.create_user(email, "pw-not-used", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def root(db: None) -> User:
    return staff("root@tollgate.example", superuser=True)


@pytest.fixture
def fiona(db: None) -> User:
    return staff("fiona@tollgate.example", "finance")


@pytest.fixture
def sam(db: None) -> User:
    return staff("sam@tollgate.example", "support")


@pytest.fixture
def nick(db: None) -> User:
    return User.objects.create_user("nick@example.com", "pw-not-used")


@pytest.fixture
def login() -> Callable[[User], Client]:
    """A test client logged in as the given user."""

    def build(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return build


@dataclass
class Acme:
    organization: Organization
    key: APIKey


@pytest.fixture
def acme(db: None) -> Acme:
    organization = create_organization("Acme", owner_email="owner@acme.example")
    grant_credits(organization, Decimal(100), reason="welcome", idempotency_key="acme-welcome")
    key, _ = create_api_key(organization, name="acme-prod")
    return Acme(organization, key)
