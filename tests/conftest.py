"""Shared fixtures: a demo upstream, a live gateway, a catalog, personas and a clean Redis.

Tests that call the live server use `django_db(transaction=True)`: the server runs in its own
processes and only sees committed rows. Each test starts with an empty Redis database.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import openai
import pytest
from django.conf import settings
from django.db import connection

from apps.catalog.models import Deployment, Model, Provider
from apps.demo_upstream.options import DemoOptions
from apps.demo_upstream.server import DemoUpstreamThread
from apps.hotstate.clients import sync_redis
from apps.keys.models import APIKey
from apps.keys.services import create_api_key
from apps.ledger.services import grant_credits
from apps.limits.models import Plan
from apps.tenants.models import Organization
from apps.tenants.services import create_organization
from tests.support.database import end_stray_database_sessions
from tests.support.servers import gunicorn_server


@pytest.fixture(scope="session", autouse=True)
def no_stray_database_sessions(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """Before the test database is dropped, end sessions that outlived their process.

    Servers and workers started by fixtures are stopped first (their fixtures were set up
    later, so they are torn down earlier); a session still open after a grace period would make
    DROP DATABASE fail, so it is logged, written to test-artifacts/ and terminated.
    """
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        end_stray_database_sessions(connection)


@pytest.fixture(autouse=True)
def clean_redis() -> None:
    sync_redis().flushdb()


@pytest.fixture(scope="session")
def demo_upstream() -> Iterator[DemoUpstreamThread]:
    with DemoUpstreamThread(DemoOptions(completion_tokens=12)) as upstream:
        yield upstream


@pytest.fixture(scope="session")
def live_server_env(django_db_setup: None, django_db_blocker: object) -> dict[str, str]:
    """Environment for server processes: the test database and test Redis."""
    db = connection.settings_dict
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "GATEWAY_CATALOG_CACHE_TTL_S": "0",  # tests change the catalog between requests
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="session")
def gateway_url(live_server_env: dict[str, str]) -> Iterator[str]:
    """A live gateway: gunicorn with two uvicorn workers on a loopback port."""
    with gunicorn_server(live_server_env, workers=2) as url:
        yield url


@pytest.fixture(scope="session")
def second_gateway_url(live_server_env: dict[str, str]) -> Iterator[str]:
    """Another gateway process sharing the same PostgreSQL and Redis."""
    with gunicorn_server(live_server_env, workers=1) as url:
        yield url


@dataclass
class Catalog:
    default: Model
    provider: Provider


@pytest.fixture
def catalog(transactional_db: None, demo_upstream: DemoUpstreamThread) -> Catalog:
    """Model `default` (the default) served by the demo upstream, plus `small`."""
    provider = Provider.objects.create(name="demo", base_url=demo_upstream.base_url, timeout_s=10)
    default = Model.objects.create(
        name="default",
        input_price_per_mtok=Decimal("0.10"),
        output_price_per_mtok=Decimal("0.40"),
        max_output_tokens=8192,
        is_default=True,
    )
    small = Model.objects.create(name="small", input_price_per_mtok=Decimal("0.05"))
    for model in (default, small):
        Deployment.objects.create(model=model, provider=provider, upstream_model="demo-small")
    return Catalog(default=default, provider=provider)


@dataclass
class Tenant:
    organization: Organization
    secret: str


@pytest.fixture
def alice(catalog: Catalog) -> Tenant:
    """An organization with 100 USD of credit, no plan limits and an unrestricted API key."""
    organization = create_organization("Alice Labs", owner_email="alice@example.com")
    grant_credits(organization, Decimal("100"), reason="test credit")
    _, secret = create_api_key(organization, name="alice-key")
    return Tenant(organization, secret)


def tenant_with(
    name: str,
    *,
    credit: str = "100",
    plan: Plan | None = None,
    **key_limits: int,
) -> Tenant:
    """An organization with `credit` USD, an optional plan and a key with optional limits."""
    organization = create_organization(name, owner_email=f"owner@{name.lower()}.example")
    organization.plan = plan
    organization.save(update_fields=["plan"])
    if Decimal(credit):
        grant_credits(organization, Decimal(credit), reason="test credit")
    key, secret = create_api_key(organization, name=f"{name}-key")
    if key_limits:
        APIKey.objects.filter(pk=key.pk).update(**key_limits)
    return Tenant(organization, secret)


@pytest.fixture
def client_for(gateway_url: str):
    """Build an official OpenAI SDK client pointed at the live gateway."""

    def build(secret: str, **options: object) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=gateway_url + "/v1", api_key=secret, **options)

    return build
