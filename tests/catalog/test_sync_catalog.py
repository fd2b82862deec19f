"""The catalog file: parsing, validation, the idempotent sync and the sync_catalog command."""

from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.catalog.catalog_file import CatalogError, PlanSpec, load_catalog_file, parse_catalog
from apps.catalog.models import Deployment, Model, Provider
from apps.catalog.selectors import default_model, enabled_models_with_deployments
from apps.catalog.services import KindReport, sync_catalog
from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.limits.models import Plan
from apps.limits.selectors import default_plan
from apps.tenants.models import Organization

HEAD = """\
default_model: small
providers:
  - name: local
    base_url: http://127.0.0.1:9100/v1
    api_key_env: LOCAL_UPSTREAM_KEY
    timeout_s: 60
  - name: hosted
    base_url: https://llm.example.com/v1
    api_key: sk-test-0123456789abcdef
    timeout_s: 30
models:
"""
SMALL = """\
  - name: small
    input_price_per_mtok: "0.10"
    output_price_per_mtok: 0.4
    context_window: 131072
    max_output_tokens: 8192
    deployments:
      - {provider: local, upstream_model: google/gemma-3-4b-it, weight: 1}
"""
# 9999999999.9999999999 has 20 significant digits: through a float it would become 1e10.
LARGE = """\
  - name: large
    input_price_per_mtok: "2.5000000001"
    output_price_per_mtok: 9999999999.9999999999
    context_window: 200000
    max_output_tokens: 16000
    deployments:
      - {provider: hosted, upstream_model: big-1, weight: 3}
      - {provider: local, upstream_model: big-1-q4, weight: 1}
"""
CATALOG = HEAD + SMALL + LARGE
PLANS = """\
default_plan: free
plans:
  - name: free
    rpm: 60
    tpm: 100000
    max_concurrent: 4
  - name: pro
    rpm: 600
    tpm: 2000000
    max_concurrent: 32
"""
WITH_PLANS = CATALOG + PLANS

SMALL_DEPLOYMENT = "small → local:google/gemma-3-4b-it"
LARGE_HOSTED = "large → hosted:big-1"
LARGE_LOCAL = "large → local:big-1-q4"

EXAMPLE_PATH = Path(settings.BASE_DIR) / "docs" / "catalog.example.yaml"


def edited(text: str, old: str, new: str) -> str:
    """``text`` with its single occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def write(tmp_path: Path, text: str, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sync_text(text: str) -> Any:
    return sync_catalog(parse_catalog(text))


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every column of every catalog row, including updated_at."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Provider, Model, Deployment, Plan)
    }


def run_command(path: Path, *args: str) -> list[str]:
    out = StringIO()
    call_command("sync_catalog", str(path), *args, stdout=out)
    return out.getvalue().splitlines()


def plan_rows() -> list[tuple[str, int, int, int, bool]]:
    return list(
        Plan.objects.order_by("name").values_list(
            "name", "rpm", "tpm", "max_concurrent", "is_default"
        )
    )


def epoch(organization: Organization) -> bytes | None:
    return sync_redis().get(keyspace.tenant_epoch(organization.pk))


def deployment_rows() -> list[tuple[str, str, str, int, bool]]:
    return list(
        Deployment.objects.order_by("pk").values_list(
            "model__name", "provider__name", "upstream_model", "weight", "enabled"
        )
    )


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------


def test_prices_are_parsed_exactly_from_strings_and_yaml_numbers() -> None:
    spec = parse_catalog(CATALOG)

    small, large = spec.models
    assert str(small.input_price_per_mtok) == "0.10"
    assert str(small.output_price_per_mtok) == "0.4"
    assert str(large.input_price_per_mtok) == "2.5000000001"
    assert str(large.output_price_per_mtok) == "9999999999.9999999999"


def test_api_key_is_kept_out_of_the_spec_repr() -> None:
    spec = parse_catalog(CATALOG)

    assert spec.providers[1].api_key == "sk-test-0123456789abcdef"
    assert "sk-test" not in repr(spec)


def test_all_errors_are_collected_with_their_location() -> None:
    text = edited(CATALOG, "timeout_s: 30", "timeout_s: 0")
    text = edited(text, "weight: 3", "weight: -1")
    text = edited(text, "max_output_tokens: 8192", "max_output_tokens: 131073")
    text = edited(text, "base_url: http://127.0.0.1:9100/v1", "base_url: ftp://127.0.0.1/v1")

    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(text)

    assert excinfo.value.errors == (
        'providers[0] (name: "local").base_url: must start with http:// or https://',
        'providers[1] (name: "hosted").timeout_s: must be between 1 and 3600, got 0',
        'models[0] (name: "small").max_output_tokens: must not exceed context_window',
        'models[1] (name: "large").deployments[0].weight: must be between 0 and 2147483647, got -1',
    )


def test_both_api_key_and_api_key_env_are_refused() -> None:
    text = edited(CATALOG, "api_key: sk-test", "api_key_env: HOSTED_KEY\n    api_key: sk-test")

    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(text)

    assert excinfo.value.errors == (
        'providers[1] (name: "hosted"): set only one of api_key and api_key_env',
    )


def test_an_enabled_model_needs_a_routable_deployment() -> None:
    text = edited(CATALOG, "google/gemma-3-4b-it, weight: 1}", "google/gemma-3-4b-it, weight: 0}")

    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(text)

    assert excinfo.value.errors == (
        'models[0] (name: "small").deployments: '
        "an enabled model needs at least one enabled deployment with weight > 0",
    )


# ----------------------------------------------------------------------------------------------
# Sync
# ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_first_sync_creates_exactly_what_the_file_says() -> None:
    report = sync_text(CATALOG)

    assert report.changed is True
    assert report.providers == KindReport(created=("local", "hosted"))
    assert report.models == KindReport(created=("large", "small"))
    assert report.deployments == KindReport(created=(SMALL_DEPLOYMENT, LARGE_HOSTED, LARGE_LOCAL))
    assert list(
        Provider.objects.order_by("name").values_list(
            "name", "base_url", "api_key", "api_key_env", "timeout_s", "enabled"
        )
    ) == [
        ("hosted", "https://llm.example.com/v1", "sk-test-0123456789abcdef", "", 30, True),
        ("local", "http://127.0.0.1:9100/v1", "", "LOCAL_UPSTREAM_KEY", 60, True),
    ]
    assert list(
        Model.objects.order_by("name").values_list(
            "name",
            "input_price_per_mtok",
            "output_price_per_mtok",
            "context_window",
            "max_output_tokens",
            "enabled",
            "is_default",
        )
    ) == [
        ("large", Decimal("2.5000000001"), Decimal("9999999999.9999999999"), 200000, 16000,
         True, False),
        ("small", Decimal("0.10"), Decimal("0.4"), 131072, 8192, True, True),
    ]  # fmt: skip
    assert deployment_rows() == [
        ("small", "local", "google/gemma-3-4b-it", 1, True),
        ("large", "hosted", "big-1", 3, True),
        ("large", "local", "big-1-q4", 1, True),
    ]


@pytest.mark.django_db
def test_second_sync_of_the_same_file_changes_nothing() -> None:
    sync_text(CATALOG)
    before = snapshot()

    report = sync_text(CATALOG)

    assert report.changed is False
    assert report.providers == KindReport()
    assert report.models == KindReport()
    assert report.deployments == KindReport()
    assert snapshot() == before


@pytest.mark.django_db
def test_a_model_removed_from_the_file_is_disabled_not_deleted() -> None:
    sync_text(CATALOG)

    report = sync_text(HEAD + SMALL)

    assert report.models == KindReport(disabled=("large",))
    assert report.deployments == KindReport(disabled=(LARGE_HOSTED, LARGE_LOCAL))
    assert report.providers == KindReport()
    assert list(Model.objects.order_by("name").values_list("name", "enabled")) == [
        ("large", False),
        ("small", True),
    ]
    assert deployment_rows() == [
        ("small", "local", "google/gemma-3-4b-it", 1, True),
        ("large", "hosted", "big-1", 3, False),
        ("large", "local", "big-1-q4", 1, False),
    ]


@pytest.mark.django_db
def test_a_model_put_back_in_the_file_is_enabled_again() -> None:
    sync_text(CATALOG)
    sync_text(HEAD + SMALL)

    report = sync_text(CATALOG)

    assert report.models == KindReport(updated={"large": ("enabled",)})
    assert report.deployments == KindReport(
        updated={LARGE_HOSTED: ("enabled",), LARGE_LOCAL: ("enabled",)}
    )
    assert Model.objects.get(name="large").enabled is True


@pytest.mark.django_db
def test_a_price_change_updates_only_that_model() -> None:
    sync_text(CATALOG)
    large_before = Model.objects.get(name="large")
    small_before = Model.objects.get(name="small")

    report = sync_text(edited(CATALOG, '"0.10"', '"0.1234567891"'))

    small = Model.objects.get(name="small")
    assert report.models == KindReport(updated={"small": ("input_price_per_mtok",)})
    assert report.deployments == KindReport()
    assert small.input_price_per_mtok == Decimal("0.1234567891")
    assert small.updated_at > small_before.updated_at
    assert Model.objects.get(name="large").updated_at == large_before.updated_at


@pytest.mark.django_db
def test_the_default_moves_to_exactly_one_model() -> None:
    sync_text(CATALOG)

    report = sync_text(edited(CATALOG, "default_model: small", "default_model: large"))

    assert report.models == KindReport(updated={"small": ("is_default",), "large": ("is_default",)})
    assert list(Model.objects.filter(is_default=True).values_list("name", flat=True)) == ["large"]
    assert default_model() == Model.objects.get(name="large")


@pytest.mark.django_db
def test_a_removed_default_model_loses_is_default() -> None:
    sync_text(CATALOG)

    report = sync_text(edited(HEAD, "default_model: small", "default_model: large") + LARGE)

    assert report.models == KindReport(
        updated={"small": ("is_default",), "large": ("is_default",)}, disabled=("small",)
    )
    assert list(Model.objects.order_by("name").values_list("name", "enabled", "is_default")) == [
        ("large", True, True),
        ("small", False, False),
    ]


@pytest.mark.django_db
def test_a_deployment_and_a_provider_absent_from_the_file_are_disabled() -> None:
    sync_text(CATALOG)
    text = edited(CATALOG, "      - {provider: hosted, upstream_model: big-1, weight: 3}\n", "")
    text = edited(
        text,
        "  - name: hosted\n"
        "    base_url: https://llm.example.com/v1\n"
        "    api_key: sk-test-0123456789abcdef\n"
        "    timeout_s: 30\n",
        "",
    )

    report = sync_text(text)

    assert report.providers == KindReport(disabled=("hosted",))
    assert report.deployments == KindReport(disabled=(LARGE_HOSTED,))
    assert report.models == KindReport()
    assert list(Provider.objects.order_by("name").values_list("name", "enabled")) == [
        ("hosted", False),
        ("local", True),
    ]


@pytest.mark.django_db
def test_weight_and_deployment_enabled_changes_are_updates() -> None:
    sync_text(CATALOG)
    text = edited(CATALOG, "big-1, weight: 3}", "big-1, weight: 5}")
    text = edited(text, "big-1-q4, weight: 1}", "big-1-q4, weight: 1, enabled: false}")

    report = sync_text(text)

    assert report.deployments == KindReport(
        updated={LARGE_HOSTED: ("weight",)}, disabled=(LARGE_LOCAL,)
    )
    assert deployment_rows() == [
        ("small", "local", "google/gemma-3-4b-it", 1, True),
        ("large", "hosted", "big-1", 5, True),
        ("large", "local", "big-1-q4", 1, False),
    ]


# ----------------------------------------------------------------------------------------------
# Plans
# ----------------------------------------------------------------------------------------------


def test_plans_are_parsed_with_their_default() -> None:
    spec = parse_catalog(WITH_PLANS)

    assert spec.plans == (
        PlanSpec(name="free", rpm=60, tpm=100000, max_concurrent=4),
        PlanSpec(name="pro", rpm=600, tpm=2000000, max_concurrent=32),
    )
    assert spec.default_plan == "free"


def test_a_file_without_plans_has_none() -> None:
    spec = parse_catalog(CATALOG)

    assert spec.plans == ()
    assert spec.default_plan is None


@pytest.mark.django_db
def test_first_sync_creates_the_plans_and_one_default() -> None:
    report = sync_text(WITH_PLANS)

    assert report.plans == KindReport(created=("pro", "free"))
    assert report.default_plan == "free"
    assert plan_rows() == [
        ("free", 60, 100000, 4, True),
        ("pro", 600, 2000000, 32, False),
    ]
    assert default_plan() == Plan.objects.get(name="free")


@pytest.mark.django_db
def test_second_sync_with_plans_changes_nothing_and_bumps_no_epoch(
    django_capture_on_commit_callbacks: Any,
) -> None:
    sync_text(WITH_PLANS)
    organization = Organization.objects.create(name="Org", plan=Plan.objects.get(name="pro"))
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = sync_text(WITH_PLANS)

    assert report.changed is False
    assert report.plans == KindReport()
    assert snapshot() == before
    assert callbacks == []
    assert epoch(organization) is None


@pytest.mark.django_db
def test_changed_plan_limits_bump_the_epoch_of_every_organization_on_it(
    django_capture_on_commit_callbacks: Any,
) -> None:
    sync_text(WITH_PLANS)
    free, pro = Plan.objects.get(name="free"), Plan.objects.get(name="pro")
    on_pro = [Organization.objects.create(name=f"Pro {n}", plan=pro) for n in (1, 2)]
    on_free = Organization.objects.create(name="Free", plan=free)
    no_plan = Organization.objects.create(name="None")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = sync_text(edited(WITH_PLANS, "tpm: 2000000", "tpm: 3000000"))

    assert report.plans == KindReport(updated={"pro": ("tpm",)})
    assert len(callbacks) == 1
    assert [epoch(org) for org in on_pro] == [b"1", b"1"]
    assert epoch(on_free) is None
    assert epoch(no_plan) is None
    assert plan_rows() == [
        ("free", 60, 100000, 4, True),
        ("pro", 600, 3000000, 32, False),
    ]


@pytest.mark.django_db
def test_moving_the_default_plan_bumps_no_epoch(django_capture_on_commit_callbacks: Any) -> None:
    sync_text(WITH_PLANS)
    organization = Organization.objects.create(name="Org", plan=Plan.objects.get(name="free"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = sync_text(edited(WITH_PLANS, "default_plan: free", "default_plan: pro"))

    assert report.plans == KindReport(updated={"free": ("is_default",), "pro": ("is_default",)})
    assert callbacks == []
    assert epoch(organization) is None
    assert default_plan() == Plan.objects.get(name="pro")


@pytest.mark.django_db
def test_a_plan_absent_from_the_file_is_kept_and_loses_the_default() -> None:
    sync_text(WITH_PLANS)
    organization = Organization.objects.create(name="Org", plan=Plan.objects.get(name="free"))
    text = edited(WITH_PLANS, "default_plan: free", "default_plan: pro")
    text = edited(text, "  - name: free\n    rpm: 60\n    tpm: 100000\n    max_concurrent: 4\n", "")

    report = sync_text(text)

    assert report.plans == KindReport(
        updated={"free": ("is_default",), "pro": ("is_default",)}, kept=("free",)
    )
    assert report.changed is True
    assert plan_rows() == [
        ("free", 60, 100000, 4, False),
        ("pro", 600, 2000000, 32, True),
    ]
    assert Organization.objects.get(pk=organization.pk).plan == Plan.objects.get(name="free")


@pytest.mark.django_db
def test_a_file_without_plans_leaves_the_plans_alone() -> None:
    sync_text(WITH_PLANS)

    report = sync_text(CATALOG)

    assert report.plans == KindReport()
    assert report.default_plan is None
    assert report.changed is False
    assert plan_rows() == [
        ("free", 60, 100000, 4, True),
        ("pro", 600, 2000000, 32, False),
    ]


# ----------------------------------------------------------------------------------------------
# Invalid files: refused, nothing written
# ----------------------------------------------------------------------------------------------

INVALID_EDITS = [
    pytest.param(
        "{provider: hosted, upstream_model: big-1",
        "{provider: nope, upstream_model: big-1",
        'models[1] (name: "large").deployments[0].provider: unknown provider "nope"',
        id="unknown-provider",
    ),
    pytest.param(
        "output_price_per_mtok: 0.4",
        "output_price_per_mtok: -0.4",
        'models[0] (name: "small").output_price_per_mtok: must not be negative, got "-0.4"',
        id="negative-price",
    ),
    pytest.param(
        "default_model: small",
        "default_model: medium",
        'default_model: unknown model "medium"',
        id="bad-default-model",
    ),
    pytest.param(
        "    timeout_s: 30\n",
        "    timeout_s: 30\n    region: eu-west\n",
        'providers[1] (name: "hosted").region: unknown key '
        "(allowed: name, base_url, api_key, api_key_env, timeout_s)",
        id="unknown-key",
    ),
    pytest.param(
        "models:\n",
        "regions: []\nmodels:\n",
        "regions: unknown key (allowed: providers, models, default_model, plans, default_plan)",
        id="unknown-top-level-key",
    ),
    pytest.param(
        '"2.5000000001"',
        '"2.50000000001"',
        'models[1] (name: "large").input_price_per_mtok: '
        'at most 10 decimal places, got "2.50000000001"',
        id="eleven-decimals",
    ),
    pytest.param(
        "  - name: large\n",
        "  - name: small\n",
        'models[1] (name: "small").name: duplicate name; first used by models[0]',
        id="duplicate-model-name",
    ),
    pytest.param(
        "big-1-q4, weight: 1}",
        "big-1-q4, weight: 1",
        "line 27, column 1: invalid YAML: expected ',' or '}', but got '<stream end>' "
        "(while parsing a flow mapping at line 26, column 9)",
        id="malformed-yaml",
    ),
    pytest.param(
        "    context_window: 200000\n",
        "    context_window: 200000: 1\n",
        "line 22, column 27: invalid YAML: mapping values are not allowed here",
        id="malformed-yaml-mapping",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new", "error"), INVALID_EDITS)
def test_an_invalid_file_is_refused_and_writes_nothing(
    tmp_path: Path, old: str, new: str, error: str
) -> None:
    sync_text(CATALOG)
    before = snapshot()
    # A valid change too, which a partial write would have applied.
    text = edited(edited(CATALOG, '"0.10"', '"0.20"'), old, new)
    path = write(tmp_path, text)

    with pytest.raises(CommandError) as excinfo:
        run_command(path)

    assert str(excinfo.value) == f"invalid catalog file {path}:\n  - {error}"
    assert snapshot() == before


INVALID_PLAN_EDITS = [
    pytest.param(
        "rpm: 60",
        "rpm: 0",
        'plans[0] (name: "free").rpm: must be between 1 and 2147483647, got 0',
        id="zero-rpm",
    ),
    pytest.param(
        "tpm: 2000000",
        "tpm: lots",
        'plans[1] (name: "pro").tpm: expected an integer, got a string ("lots")',
        id="tpm-not-an-integer",
    ),
    pytest.param(
        "    max_concurrent: 4\n",
        "",
        'plans[0] (name: "free").max_concurrent: required key is missing',
        id="missing-max-concurrent",
    ),
    pytest.param(
        "    max_concurrent: 4\n",
        "    max_concurrent: 4\n    burst: 10\n",
        'plans[0] (name: "free").burst: unknown key (allowed: name, rpm, tpm, max_concurrent)',
        id="unknown-plan-key",
    ),
    pytest.param(
        "  - name: pro\n",
        "  - name: pro+\n",
        'plans[1] (name: "pro+").name: "pro+" is not a slug (a-z, 0-9, - and _)',
        id="plan-name-not-a-slug",
    ),
    pytest.param(
        "  - name: pro\n",
        "  - name: free\n",
        'plans[1] (name: "free").name: duplicate name; first used by plans[0]',
        id="duplicate-plan-name",
    ),
    pytest.param(
        "default_plan: free",
        "default_plan: gold",
        'default_plan: unknown plan "gold"',
        id="unknown-default-plan",
    ),
    pytest.param(
        "default_plan: free\n",
        "",
        "default_plan: required when plans is given",
        id="missing-default-plan",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new", "error"), INVALID_PLAN_EDITS)
def test_an_invalid_plan_is_refused_and_writes_nothing(
    tmp_path: Path, old: str, new: str, error: str
) -> None:
    sync_text(WITH_PLANS)
    before = snapshot()
    text = edited(edited(WITH_PLANS, "rpm: 600", "rpm: 900"), old, new)
    path = write(tmp_path, text)

    with pytest.raises(CommandError) as excinfo:
        run_command(path)

    assert str(excinfo.value) == f"invalid catalog file {path}:\n  - {error}"
    assert snapshot() == before


def test_an_empty_plans_list_is_refused() -> None:
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(CATALOG + "default_plan: free\nplans: []\n")

    assert excinfo.value.errors == (
        "plans: must list at least one plan; leave the key out to keep plans as they are",
        'default_plan: unknown plan "free"',
    )


def test_a_default_plan_without_plans_is_refused() -> None:
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(CATALOG + "default_plan: free\n")

    assert excinfo.value.errors == (
        'default_plan: unknown plan "free" (the file has no plans section)',
    )


# ----------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_prints_a_summary_then_changed_or_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, CATALOG)

    first = run_command(path)
    second = run_command(path)

    assert first == [
        "providers: created local",
        "providers: created hosted",
        "models: created large",
        "models: created small",
        f"deployments: created {SMALL_DEPLOYMENT}",
        f"deployments: created {LARGE_HOSTED}",
        f"deployments: created {LARGE_LOCAL}",
        "default model: small",
        "changed",
    ]
    assert second == ["catalog already up to date", "default model: small", "unchanged"]


@pytest.mark.django_db
def test_command_reports_updates_with_their_fields(tmp_path: Path) -> None:
    run_command(write(tmp_path, CATALOG))
    text = edited(CATALOG, "api_key: sk-test-0123456789abcdef", "api_key: sk-test-rotated-key")

    lines = run_command(write(tmp_path, text, "rotated.yaml"))

    assert lines == ["providers: updated hosted (api_key)", "default model: small", "changed"]


@pytest.mark.django_db
def test_dry_run_reports_changes_and_writes_nothing(tmp_path: Path) -> None:
    run_command(write(tmp_path, CATALOG))
    before = snapshot()
    path = write(tmp_path, HEAD + SMALL, "smaller.yaml")

    lines = run_command(path, "--dry-run")

    assert lines == [
        "models: disabled large",
        f"deployments: disabled {LARGE_HOSTED}",
        f"deployments: disabled {LARGE_LOCAL}",
        "default model: small",
        "dry run: nothing was written",
        "changed",
    ]
    assert snapshot() == before


@pytest.mark.django_db
def test_command_reports_plans_and_the_default_plan(tmp_path: Path) -> None:
    first = run_command(write(tmp_path, WITH_PLANS))
    text = edited(WITH_PLANS, "default_plan: free", "default_plan: pro")
    text = edited(text, "  - name: free\n    rpm: 60\n    tpm: 100000\n    max_concurrent: 4\n", "")
    path = write(tmp_path, text, "pro-only.yaml")

    second = run_command(path)
    third = run_command(path)

    assert first[-6:] == [
        f"deployments: created {LARGE_LOCAL}",
        "plans: created pro",
        "plans: created free",
        "default model: small",
        "default plan: free",
        "changed",
    ]
    assert second == [
        "plans: updated free (is_default)",
        "plans: updated pro (is_default)",
        "plans: kept free (not in the file; left in place)",
        "default model: small",
        "default plan: pro",
        "changed",
    ]
    assert third == [
        "plans: kept free (not in the file; left in place)",
        "catalog already up to date",
        "default model: small",
        "default plan: pro",
        "unchanged",
    ]


@pytest.mark.django_db
def test_dry_run_of_a_plan_change_bumps_no_epoch(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    run_command(write(tmp_path, WITH_PLANS))
    organization = Organization.objects.create(name="Org", plan=Plan.objects.get(name="free"))
    before = snapshot()
    path = write(tmp_path, edited(WITH_PLANS, "rpm: 60\n", "rpm: 120\n"), "faster.yaml")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lines = run_command(path, "--dry-run")

    assert lines == [
        "plans: updated free (rpm)",
        "default model: small",
        "default plan: free",
        "dry run: nothing was written",
        "changed",
    ]
    assert callbacks == []
    assert epoch(organization) is None
    assert snapshot() == before


@pytest.mark.django_db
def test_command_refuses_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"

    with pytest.raises(CommandError) as excinfo:
        run_command(path)

    assert str(excinfo.value) == (
        f"invalid catalog file {path}:\n"
        f"  - cannot read the file: [Errno 2] No such file or directory: '{path}'"
    )


# ----------------------------------------------------------------------------------------------
# The documented example and the read helpers
# ----------------------------------------------------------------------------------------------


def test_the_documented_example_is_valid() -> None:
    spec = load_catalog_file(EXAMPLE_PATH)

    assert spec.default_model == "default"
    assert [model.name for model in spec.models] == ["default", "large", "preview"]
    assert spec.models[0].input_price_per_mtok == Decimal("0.10")
    assert spec.models[0].output_price_per_mtok == Decimal("0.40")
    assert spec.plans == (
        PlanSpec(name="free", rpm=60, tpm=100_000, max_concurrent=4),
        PlanSpec(name="pro", rpm=600, tpm=2_000_000, max_concurrent=32),
        PlanSpec(name="enterprise", rpm=6000, tpm=20_000_000, max_concurrent=256),
    )
    assert spec.default_plan == "free"


@pytest.mark.django_db
def test_the_documented_example_syncs_and_is_idempotent() -> None:
    first = run_command(EXAMPLE_PATH)
    before = snapshot()
    second = run_command(EXAMPLE_PATH)

    assert first[-1] == "changed"
    assert second[-1] == "unchanged"
    assert snapshot() == before
    assert default_model() == Model.objects.get(name="default")
    assert default_plan() == Plan.objects.get(name="free")


@pytest.mark.django_db
def test_enabled_models_come_with_routable_deployments_in_two_queries(
    django_assert_num_queries: Any,
) -> None:
    run_command(EXAMPLE_PATH)

    with django_assert_num_queries(2):
        routing = {
            model.name: [
                (deployment.provider.name, deployment.upstream_model, deployment.weight)
                for deployment in model.enabled_deployments
            ]
            for model in enabled_models_with_deployments()
        }

    assert routing == {
        "default": [("local", "google/gemma-3-4b-it", 1)],
        "large": [
            ("hosted", "meta-llama/Llama-3.3-70B-Instruct", 3),
            ("lab", "llama-3.3-70b", 1),
        ],
    }
