"""Helpers of the management API tests."""

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.tenants.models import Membership, Organization


def signed_in(user: object) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def with_token(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def member_of(organization: Organization, email: str, role: str) -> object:
    user = get_user_model().objects.create_user(email=email)
    Membership.objects.create(organization=organization, user=user, role=role)
    return user


def url(organization: Organization, tail: str = "") -> str:
    """The API address of `tail` under an organization: url(labs, "keys/")."""
    return f"/api/v1/orgs/{organization.pk}/{tail}"


def error_of(response: object) -> dict:
    """The error body, after checking it has exactly the one shape."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]
