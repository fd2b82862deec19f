"""Plans: the default plan for new organizations, set_plan, key limits and the tenant epoch."""

from io import StringIO
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.keys.models import APIKey
from apps.keys.services import create_api_key, rotate_api_key, set_key_limits
from apps.limits import services as limit_services
from apps.limits.models import Plan
from apps.limits.selectors import default_plan
from apps.limits.services import InvalidLimitError, bump_tenant_epochs, change_plan
from apps.tenants.models import Organization
from apps.tenants.services import create_organization

LIMIT_ERROR = "is not a whole number from 1 to 2147483647"


@pytest.fixture
def free() -> Plan:
    return Plan.objects.create(name="free", rpm=60, tpm=100_000, max_concurrent=4, is_default=True)


@pytest.fixture
def pro() -> Plan:
    return Plan.objects.create(name="pro", rpm=600, tpm=2_000_000, max_concurrent=32)


@pytest.fixture
def alice(free: Plan) -> Organization:
    """Alice Labs, on the default plan."""
    return create_organization("Alice Labs", owner_email="alice@example.com")


def run(command: str, *args: str) -> list[str]:
    """Run a management command; its stdout lines."""
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()


def epoch(organization: Organization) -> bytes | None:
    return sync_redis().get(keyspace.tenant_epoch(organization.pk))


def plan_name(organization: Organization) -> str | None:
    plan = Organization.objects.get(pk=organization.pk).plan
    return plan.name if plan else None


class _DownRedis:
    """Stands in for sync_redis() while Redis is unreachable."""

    def pipeline(self, **options: Any) -> Any:
        raise redis.ConnectionError("Redis is down")


# ----------------------------------------------------------------------------------------------
# create_org
# ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("pro")
def test_create_org_puts_the_organization_on_the_default_plan(free: Plan) -> None:
    lines = run("create_org", "Alice Labs", "--owner", "alice@example.com")

    organization = Organization.objects.get(name="Alice Labs")
    assert lines == [str(organization.pk)]
    assert organization.plan == free


@pytest.mark.django_db
@pytest.mark.usefixtures("free")
def test_create_org_with_plan_uses_the_named_plan(pro: Plan) -> None:
    lines = run("create_org", "Bob Labs", "--owner", "bob@example.com", "--plan", "pro")

    organization = Organization.objects.get(name="Bob Labs")
    assert lines == [str(organization.pk)]
    assert organization.plan == pro


@pytest.mark.django_db
def test_create_org_without_a_default_plan_leaves_the_plan_empty() -> None:
    run("create_org", "Charlie Labs", "--owner", "charlie@example.com")

    assert Organization.objects.get(name="Charlie Labs").plan is None


@pytest.mark.django_db
@pytest.mark.usefixtures("free")
def test_create_org_refuses_an_unknown_plan_and_creates_nothing() -> None:
    with pytest.raises(CommandError) as excinfo:
        run("create_org", "Bob Labs", "--owner", "bob@example.com", "--plan", "gold")

    assert str(excinfo.value) == "No plan named 'gold'."
    assert Organization.objects.count() == 0


@pytest.mark.django_db
def test_default_plan_is_none_without_one(pro: Plan) -> None:
    assert default_plan() is None
    assert pro.is_default is False


# ----------------------------------------------------------------------------------------------
# set_plan and change_plan
# ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("pro")
def test_set_plan_changes_the_plan_and_bumps_the_tenant_epoch(
    alice: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lines = run("set_plan", "Alice Labs", "pro")

    assert lines == ["pro"]
    assert plan_name(alice) == "pro"
    assert len(callbacks) == 1
    assert epoch(alice) == b"1"


@pytest.mark.django_db
@pytest.mark.usefixtures("pro")
def test_set_plan_accepts_the_organization_id_and_each_change_bumps_again(
    alice: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = run("set_plan", str(alice.pk), "pro")
    with django_capture_on_commit_callbacks(execute=True):
        second = run("set_plan", str(alice.pk), "free")

    assert (first, second) == (["pro"], ["free"])
    assert plan_name(alice) == "free"
    assert epoch(alice) == b"2"


@pytest.mark.django_db
def test_set_plan_to_the_current_plan_writes_nothing(
    alice: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lines = run("set_plan", "Alice Labs", "free")

    assert lines == ["free"]
    assert callbacks == []
    assert epoch(alice) is None


@pytest.mark.django_db
def test_set_plan_refuses_an_unknown_plan(
    alice: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(CommandError) as excinfo,
    ):
        run("set_plan", "Alice Labs", "gold")

    assert str(excinfo.value) == "No plan named 'gold'."
    assert plan_name(alice) == "free"
    assert callbacks == []
    assert epoch(alice) is None


@pytest.mark.django_db
@pytest.mark.usefixtures("pro")
def test_set_plan_refuses_an_unknown_organization() -> None:
    with pytest.raises(CommandError) as excinfo:
        run("set_plan", "Nobody Labs", "pro")

    assert str(excinfo.value) == "No organization 'Nobody Labs'."


@pytest.mark.django_db
def test_change_plan_carries_on_when_redis_is_down(
    alice: Organization,
    pro: Plan,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    monkeypatch.setattr(limit_services, "sync_redis", _DownRedis)

    with django_capture_on_commit_callbacks(execute=True):
        organization = change_plan(alice, pro)

    assert organization.plan == pro
    assert plan_name(alice) == "pro"
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.levelname == "WARNING"] == [
        ("WARNING", f"could not bump the tenant epoch of organizations [{alice.pk}]: Redis is down")
    ]


@pytest.mark.django_db
def test_change_plan_rolled_back_bumps_nothing(alice: Organization, pro: Plan) -> None:
    # Under django_db the test's transaction never commits, so on-commit work never runs.
    change_plan(alice, pro)

    assert epoch(alice) is None


def test_bump_tenant_epochs_increments_each_tenant_once() -> None:
    assert bump_tenant_epochs([7, 8, 7]) is True
    assert bump_tenant_epochs([8]) is True

    assert sync_redis().get(keyspace.tenant_epoch(7)) == b"1"
    assert sync_redis().get(keyspace.tenant_epoch(8)) == b"2"


# ----------------------------------------------------------------------------------------------
# create_key limits and set_key_limits
# ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_key_stores_its_own_limits(alice: Organization) -> None:
    lines = run("create_key", "Alice Labs", "--rpm", "30", "--tpm", "5000", "--concurrency", "2")

    key = APIKey.objects.get(organization=alice)
    assert len(lines) == 1
    assert lines[0].startswith(key.prefix)
    assert (key.rpm, key.tpm, key.max_concurrent) == (30, 5000, 2)


@pytest.mark.django_db
def test_create_key_without_limits_leaves_them_to_the_plan(alice: Organization) -> None:
    run("create_key", "Alice Labs")

    key = APIKey.objects.get(organization=alice)
    assert (key.rpm, key.tpm, key.max_concurrent) == (None, None, None)


@pytest.mark.django_db
@pytest.mark.usefixtures("alice")
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--rpm", "0"),
        ("--tpm", "-5"),
        ("--concurrency", "1.5"),
        ("--rpm", "many"),
        ("--tpm", "2147483648"),
        ("--concurrency", "٣"),
    ],
)
def test_create_key_refuses_invalid_limits(option: str, value: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        run("create_key", "Alice Labs", option, value)

    assert str(excinfo.value) == f"Error: argument {option}: {value!r} {LIMIT_ERROR}"
    assert APIKey.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("limits", [{"rpm": 0}, {"tpm": -1}, {"max_concurrent": True}])
def test_create_api_key_refuses_invalid_limits(alice: Organization, limits: dict) -> None:
    with pytest.raises(InvalidLimitError):
        create_api_key(alice, **limits)

    assert APIKey.objects.count() == 0


@pytest.mark.django_db
def test_set_key_limits_saves_and_bumps_the_tenant_epoch(
    alice: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    key, _ = create_api_key(alice, rpm=30)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        set_key_limits(key, rpm=None, tpm=1000, max_concurrent=3)

    key.refresh_from_db()
    assert (key.rpm, key.tpm, key.max_concurrent) == (None, 1000, 3)
    assert len(callbacks) == 1
    assert epoch(alice) == b"1"


@pytest.mark.django_db
def test_set_key_limits_without_a_change_bumps_nothing(
    alice: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    key, _ = create_api_key(alice, rpm=30, tpm=1000, max_concurrent=3)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        set_key_limits(key, rpm=30, tpm=1000, max_concurrent=3)

    assert callbacks == []
    assert epoch(alice) is None


@pytest.mark.django_db
def test_set_key_limits_refuses_zero_and_writes_nothing(alice: Organization) -> None:
    key, _ = create_api_key(alice, rpm=30)

    with pytest.raises(InvalidLimitError) as excinfo:
        set_key_limits(key, rpm=0, tpm=None, max_concurrent=None)

    assert str(excinfo.value) == "rpm must be a whole number from 1 to 2147483647"
    key.refresh_from_db()
    assert key.rpm == 30


@pytest.mark.django_db
def test_a_rotated_key_keeps_its_limits(alice: Organization) -> None:
    key, _ = create_api_key(alice, rpm=30, tpm=5000, max_concurrent=2)

    new_key, _ = rotate_api_key(key)

    new_key.refresh_from_db()
    assert (new_key.rpm, new_key.tpm, new_key.max_concurrent) == (30, 5000, 2)
