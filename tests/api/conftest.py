"""Personas of the management API tests, after healthchecks' hc/test.py.

Alice owns Alice Labs, Dana is an admin there and Bob a plain member. Charlie owns Charlie Co
and is an outsider to Alice Labs. Every client is signed in by session (CSRF checks off: see
test_api_auth.py for them) unless it is built from a management token.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.api.services import create_management_token
from apps.ledger.services import grant_credits
from apps.limits.models import Plan
from apps.tenants.models import Organization, Role
from apps.tenants.services import create_organization
from tests.api.support import member_of, signed_in, with_token


@dataclass
class Persona:
    user: object
    client: APIClient


@pytest.fixture
def plan(db: None) -> Plan:
    return Plan.objects.create(name="team", rpm=600, tpm=100_000, max_concurrent=20)


@pytest.fixture
def labs(plan: Plan) -> Organization:
    """Alice Labs, on the team plan, with 100 USD of credit."""
    organization = create_organization("Alice Labs", owner_email="alice@example.com", plan=plan)
    grant_credits(organization, Decimal(100), reason="welcome credit")
    return organization


@pytest.fixture
def charlie_co(db: None) -> Organization:
    organization = create_organization("Charlie Co", owner_email="charlie@example.com")
    grant_credits(organization, Decimal(7), reason="welcome credit")
    return organization


@pytest.fixture
def alice(labs: Organization) -> Persona:
    user = get_user_model().objects.get(email="alice@example.com")
    return Persona(user, signed_in(user))


@pytest.fixture
def dana(labs: Organization) -> Persona:
    user = member_of(labs, "dana@example.com", Role.ADMIN)
    return Persona(user, signed_in(user))


@pytest.fixture
def bob(labs: Organization) -> Persona:
    user = member_of(labs, "bob@example.com", Role.MEMBER)
    return Persona(user, signed_in(user))


@pytest.fixture
def charlie(charlie_co: Organization) -> Persona:
    user = get_user_model().objects.get(email="charlie@example.com")
    return Persona(user, signed_in(user))


@pytest.fixture
def labs_token(labs: Organization, alice: Persona) -> Callable[..., APIClient]:
    """A client authenticated by a new management token of Alice Labs (made by Alice)."""

    def build(role: str = Role.ADMIN) -> APIClient:
        _, secret = create_management_token(labs, name="ci", created_by=alice.user, role=role)
        return with_token(secret)

    return build
