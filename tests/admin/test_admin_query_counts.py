"""Admin list pages issue the same number of queries for 10 rows as for 200: no N+1."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import record_audit
from apps.keys.models import APIKey
from apps.keys.services import create_api_key
from apps.ledger.services import grant_credits
from apps.tenants.models import Organization
from apps.tenants.services import create_organization
from tests.admin.usage_rows import store, usage_row

pytestmark = pytest.mark.django_db


def seed_organizations(count: int, creator: User) -> None:
    start = Organization.objects.count()
    for n in range(start, start + count):
        organization = create_organization(f"Org {n:04d}", owner_email=f"owner{n}@x.example")
        grant_credits(organization, Decimal(1), reason="seed", actor=creator)
        create_api_key(organization, name=f"key-{n}", created_by=creator)


def seed_usage(count: int) -> None:
    key = APIKey.objects.first()
    if key is None:
        key, _ = create_api_key(create_organization("Busy", owner_email="busy@x.example"))
    start = timezone.now()
    store([usage_row(key, start - timedelta(seconds=n)) for n in range(count)])


def seed_audit(count: int, actor: User) -> None:
    key = APIKey.objects.first()
    if key is None:
        key, _ = create_api_key(create_organization("Audited", owner_email="a@x.example"))
    for _ in range(count):
        record_audit(actor=actor, action="keys.revoke", target=key)


def queries_for(client, url: str) -> int:
    client.get(url)  # warm the per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("url_name", "seed"),
    [
        ("admin:tenants_organization_changelist", "orgs"),
        ("admin:keys_apikey_changelist", "orgs"),
        ("admin:ledger_ledgerentry_changelist", "orgs"),
        ("admin:metering_usagerecord_changelist", "usage"),
        ("admin:audit_auditentry_changelist", "audit"),
        ("admin:metering_overview", "usage"),
    ],
)
def test_list_pages_use_as_many_queries_for_200_rows_as_for_10(root, login, url_name, seed):
    client = login(root)
    url = reverse(url_name)
    seeders: dict[str, Callable[[int], None]] = {
        "orgs": lambda n: seed_organizations(n, root),
        "usage": seed_usage,
        "audit": lambda n: seed_audit(n, root),
    }

    seeders[seed](10)
    few = queries_for(client, url)
    seeders[seed](190)
    many = queries_for(client, url)

    assert few == many
    assert many <= 8


def test_the_organization_page_query_count_does_not_grow_with_its_data(root, login):
    organization = create_organization("Busy", owner_email="busy@x.example")
    url = reverse("admin:tenants_organization_change", args=[organization.pk])
    client = login(root)

    def add(count: int) -> None:
        for n in range(count):
            key, _ = create_api_key(organization, name=f"k{n}", created_by=root)
            grant_credits(organization, Decimal(1), reason="seed", actor=root)
            store([usage_row(key, timezone.now())])

    add(3)
    few = queries_for(client, url)
    add(30)
    many = queries_for(client, url)

    assert few == many
