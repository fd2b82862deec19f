"""Personas and data for the dashboard tests.

healthchecks-style personas: alice owns "Alice Labs", bob is a plain member of it, and
charlie owns "Charlie Co", another tenant. Each has a verified email and a password.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.accounts.models import User
from apps.catalog.models import Model
from apps.keys.models import APIKey
from apps.keys.services import create_api_key
from apps.ledger.services import grant_credits
from apps.metering.models import UsageRecord
from apps.tenants.models import Membership, Organization, Role
from apps.tenants.services import create_organization
from tests.support.servers import gunicorn_server

PASSWORD = "correct horse battery staple"
_request_ids = count(1)

PUBLIC_BASE_URL = "http://tollgate.test"
"""What the live dashboard server believes its address is: links in its emails start with
it, and the browser tests map it onto the server's real loopback address."""
WELCOME_CREDIT_USD = "5"


@pytest.fixture(scope="session", autouse=True)
def static_root() -> None:
    """WhiteNoise warns (an error under filterwarnings) when STATIC_ROOT is missing; in
    production `collectstatic` makes it (Dockerfile)."""
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def fast_password_hashing(request: pytest.FixtureRequest, settings) -> None:
    """Unit tests hash passwords with MD5. Not for tests of the live server: it must read
    the passwords they store with its real hashers."""
    if "dashboard_url" not in request.fixturenames:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the live server's file-based email backend writes to."""
    return tmp_path_factory.mktemp("mailbox")


@pytest.fixture(scope="session")
def dashboard_url(live_server_env: dict[str, str], mailbox: Path) -> Iterator[str]:
    """A live gunicorn server of the whole app (dashboard and /v1), with a file mailbox,
    the CSP middleware, a welcome credit and static files collected as in production."""
    call_command("collectstatic", "--noinput", verbosity=0)
    env = {
        **live_server_env,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mailbox),
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "WELCOME_CREDIT_USD": WELCOME_CREDIT_USD,
        "SESSION_COOKIE_SECURE": "0",  # plain http on loopback
        "CSRF_COOKIE_SECURE": "0",
    }
    with gunicorn_server(env, workers=2) as url:
        yield url


@dataclass
class Persona:
    user: User
    membership: Membership
    client: Client

    @property
    def org(self) -> Organization:
        return self.membership.organization


def _verified_owner(email: str, org_name: str) -> tuple[User, Organization]:
    organization = create_organization(org_name, owner_email=email)
    user = get_user_model().objects.get(email=email)
    user.set_password(PASSWORD)
    user.email_verified_at = timezone.now()
    user.save()
    return user, organization


def _persona(user: User, organization: Organization) -> Persona:
    client = Client()
    client.force_login(user)
    membership = Membership.objects.select_related("organization").get(
        user=user, organization=organization
    )
    return Persona(user=user, membership=membership, client=client)


@pytest.fixture
def models(db: None) -> list[Model]:
    """Two catalog models (no deployments needed for pages): `default` and `small`."""
    return [
        Model.objects.create(
            name="default",
            input_price_per_mtok=Decimal("0.10"),
            output_price_per_mtok=Decimal("0.40"),
            is_default=True,
        ),
        Model.objects.create(name="small", input_price_per_mtok=Decimal("0.05")),
    ]


@pytest.fixture
def alice(models: list[Model]) -> Persona:
    user, organization = _verified_owner("alice@example.com", "Alice Labs")
    grant_credits(organization, Decimal("100"), reason="test credit")
    return _persona(user, organization)


@pytest.fixture
def bob(alice: Persona) -> Persona:
    """A plain member of Alice Labs."""
    user = get_user_model().objects.create_user("bob@example.com", PASSWORD)
    user.email_verified_at = timezone.now()
    user.save()
    Membership.objects.create(organization=alice.org, user=user, role=Role.MEMBER)
    return _persona(user, alice.org)


@pytest.fixture
def charlie(models: list[Model]) -> Persona:
    """The owner of another tenant, Charlie Co."""
    user, organization = _verified_owner("charlie@example.com", "Charlie Co")
    return _persona(user, organization)


def make_key(organization: Organization, name: str = "k") -> APIKey:
    key, _ = create_api_key(organization, name=name)
    return key


def make_usage(
    organization: Organization,
    key: APIKey,
    *,
    started_at: datetime | None = None,
    model: str = "default",
    cost: str = "0.0000123400",
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
) -> UsageRecord:
    """One stored usage row (as ingest would write it, without its ledger entry)."""
    started = started_at or timezone.now().astimezone(UTC) - timedelta(minutes=5)
    return UsageRecord.objects.create(
        request_id=f"req-{next(_request_ids)}",
        organization=organization,
        key=key,
        model=model,
        deployment_id=1,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        input_price_per_mtok=Decimal("0.1"),
        output_price_per_mtok=Decimal("0.4"),
        cost=Decimal(cost),
        status="ok",
        stream=False,
        started_at=started,
        finished_at=started + timedelta(milliseconds=250),
        latency_ms=250,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tell where the screenshots are when this run made any."""
    from tests.dashboard.browser import SCREENSHOTS

    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")
