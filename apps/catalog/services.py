"""Apply a validated catalog file to the database: one transaction, idempotent, never deletes.

Plans are synced too when the file has a ``plans`` section; a change to a plan's limits bumps the
tenant epoch of every organization on it once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from django.db import connection, models, transaction
from django.db.models.functions import Now

from apps.catalog.catalog_file import (
    CatalogSpec,
    DeploymentSpec,
    ModelSpec,
    PlanSpec,
    ProviderSpec,
)
from apps.catalog.models import Deployment, Model, ModelPrice, Provider
from apps.limits.models import Plan
from apps.limits.selectors import organization_ids_on_plans
from apps.limits.services import bump_tenant_epochs_on_commit

# Key of the PostgreSQL transaction-level advisory lock that serialises concurrent syncs.
SYNC_LOCK_ID: Final[int] = 0x7011_CA7A

# Plan fields the gateway enforces: changing one makes the plan's tenants reload their keys.
PLAN_LIMIT_FIELDS: Final[frozenset[str]] = frozenset({"rpm", "tpm", "max_concurrent"})

# Model fields whose change appends a ModelPrice row.
PRICE_FIELDS: Final[frozenset[str]] = frozenset({"input_price_per_mtok", "output_price_per_mtok"})
SYNC_LABEL: Final[str] = "sync_catalog"


@dataclass(frozen=True)
class KindReport:
    """What a sync changed for one kind of row, by name.

    ``created``: new rows. ``disabled``: rows that went from enabled to disabled.
    ``updated``: every other changed row, mapped to the names of its changed fields (a row both
    disabled and otherwise changed appears in both, without ``enabled`` in ``updated``).
    ``kept``: rows absent from the file that were left as they are (plans, which cannot be
    disabled); a kept row that lost its default flag is also in ``updated``. Not a change.
    """

    created: tuple[str, ...] = ()
    updated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    disabled: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.disabled)


@dataclass(frozen=True)
class SyncReport:
    """The outcome of :func:`sync_catalog`. Deployments are named ``model → provider:upstream``.

    ``plans`` is empty and ``default_plan`` None when the file had no plans section.
    """

    providers: KindReport
    models: KindReport
    deployments: KindReport
    default_model: str
    dry_run: bool = False
    plans: KindReport = KindReport()
    default_plan: str | None = None

    @property
    def changed(self) -> bool:
        """True when any row was (or, in a dry run, would have been) written."""
        kinds = (self.providers, self.models, self.deployments, self.plans)
        return any(kind.changed for kind in kinds)


@dataclass
class _Changes:
    created: list[str] = field(default_factory=list)
    updated: dict[str, tuple[str, ...]] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def record(self, name: str, row: Any, changed: Iterable[str]) -> None:
        """File the fields just saved on an existing ``row`` under ``name``."""
        changed = tuple(changed)
        if "enabled" in changed and not row.enabled:
            self.disabled.append(name)
            changed = tuple(f for f in changed if f != "enabled")
        if changed:
            self.updated[name] = changed

    def freeze(self) -> KindReport:
        return KindReport(
            tuple(self.created), dict(self.updated), tuple(self.disabled), tuple(self.kept)
        )


def sync_catalog(spec: CatalogSpec, *, dry_run: bool = False) -> SyncReport:
    """Make the catalog tables match ``spec`` in one transaction; return what changed.

    Rows are matched by provider name, model name and (model, provider, upstream_model) for
    deployments. Rows absent from the file are disabled, never deleted; a model absent from the
    file also loses ``is_default``. Only rows whose values differ are saved, so applying the same
    file twice writes nothing. With ``dry_run`` the transaction is rolled back and the report
    says what would have changed.

    Plans (only when the file has a ``plans`` section) are matched by name and never disabled
    or deleted: organizations may be on them. Exactly ``default_plan`` is marked default.
    Organizations on a plan whose limits changed get their tenant epoch bumped after commit.
    """
    with transaction.atomic():
        _lock_against_concurrent_syncs()
        providers, provider_rows = _sync_providers(spec.providers)
        models_changes, model_rows = _sync_models(spec.models, spec.default_model)
        deployments = _sync_deployments(spec.models, model_rows, provider_rows)
        plans = _sync_plans(spec.plans, spec.default_plan) if spec.plans else _Changes()
        if dry_run:
            transaction.set_rollback(True)
    return SyncReport(
        providers=providers.freeze(),
        models=models_changes.freeze(),
        deployments=deployments.freeze(),
        default_model=spec.default_model,
        dry_run=dry_run,
        plans=plans.freeze(),
        default_plan=spec.default_plan,
    )


def _lock_against_concurrent_syncs() -> None:
    """On PostgreSQL, wait for any other sync to commit first (released at transaction end)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SYNC_LOCK_ID])


def _save_changes(row: models.Model, desired: Mapping[str, Any]) -> tuple[str, ...]:
    """Set the ``desired`` values that differ on ``row`` and save only those (plus auto_now).

    Returns the names of the changed fields; nothing is written when it is empty.
    """
    changed = tuple(name for name, value in desired.items() if getattr(row, name) != value)
    if changed:
        for name in changed:
            setattr(row, name, desired[name])
        auto_now = [f.name for f in row._meta.concrete_fields if getattr(f, "auto_now", False)]
        row.save(update_fields=[*changed, *auto_now])
    return changed


def _sync_providers(specs: tuple[ProviderSpec, ...]) -> tuple[_Changes, dict[str, Provider]]:
    """Upsert providers by name and enable them; disable providers absent from the file."""
    changes = _Changes()
    rows = {row.name: row for row in Provider.objects.order_by("name")}
    for spec in specs:
        desired = {
            "base_url": spec.base_url,
            "api_key": spec.api_key,
            "api_key_env": spec.api_key_env,
            "timeout_s": spec.timeout_s,
            "enabled": True,
        }
        row = rows.get(spec.name)
        if row is None:
            rows[spec.name] = Provider.objects.create(name=spec.name, **desired)
            changes.created.append(spec.name)
        else:
            changes.record(spec.name, row, _save_changes(row, desired))
    in_file = {spec.name for spec in specs}
    for name, row in rows.items():
        if name not in in_file:
            changes.record(name, row, _save_changes(row, {"enabled": False}))
    return changes, rows


def _model_values(spec: ModelSpec, *, is_default: bool) -> dict[str, Any]:
    return {
        "input_price_per_mtok": spec.input_price_per_mtok,
        "output_price_per_mtok": spec.output_price_per_mtok,
        "context_window": spec.context_window,
        "max_output_tokens": spec.max_output_tokens,
        "enabled": spec.enabled,
        "is_default": is_default,
    }


def _sync_models(
    specs: tuple[ModelSpec, ...], default_name: str
) -> tuple[_Changes, dict[str, Model]]:
    """Upsert models by name; disable (and un-default) models absent from the file.

    Writes in an order that keeps at most one default at every statement, as the partial
    unique constraint requires: absent models first, then the file's models, the default last.
    """
    changes = _Changes()
    rows = {row.name: row for row in Model.objects.order_by("name")}
    in_file = {spec.name for spec in specs}
    for name, row in rows.items():
        if name not in in_file:
            changes.record(name, row, _save_changes(row, {"enabled": False, "is_default": False}))
    for spec in sorted(specs, key=lambda s: s.name == default_name):  # stable: default last
        desired = _model_values(spec, is_default=spec.name == default_name)
        row = rows.get(spec.name)
        if row is None:
            rows[spec.name] = Model.objects.create(name=spec.name, **desired)
            changes.created.append(spec.name)
            record_price(rows[spec.name], label=SYNC_LABEL)
        else:
            changed = _save_changes(row, desired)
            changes.record(spec.name, row, changed)
            if PRICE_FIELDS.intersection(changed):
                record_price(row, label=SYNC_LABEL)
    return changes, rows


def _deployment_name(model: str, provider: str, upstream_model: str) -> str:
    return f"{model} → {provider}:{upstream_model}"


def _sync_deployments(
    specs: tuple[ModelSpec, ...],
    model_rows: Mapping[str, Model],
    provider_rows: Mapping[str, Provider],
) -> _Changes:
    """Upsert deployments by (model, provider, upstream_model); disable every other one."""
    changes = _Changes()
    rows = {
        (row.model_id, row.provider_id, row.upstream_model): row
        for row in Deployment.objects.order_by("pk")
    }
    in_file: set[tuple[int, int, str]] = set()
    for model_spec in specs:
        model = model_rows[model_spec.name]
        for spec in model_spec.deployments:
            key = (model.pk, provider_rows[spec.provider].pk, spec.upstream_model)
            in_file.add(key)
            _upsert_deployment(changes, rows.get(key), model, provider_rows[spec.provider], spec)
    model_names = {row.pk: name for name, row in model_rows.items()}
    provider_names = {row.pk: name for name, row in provider_rows.items()}
    for (model_id, provider_id, upstream_model), row in rows.items():
        if (model_id, provider_id, upstream_model) not in in_file:
            name = _deployment_name(
                model_names[model_id], provider_names[provider_id], upstream_model
            )
            changes.record(name, row, _save_changes(row, {"enabled": False}))
    return changes


def _upsert_deployment(
    changes: _Changes,
    row: Deployment | None,
    model: Model,
    provider: Provider,
    spec: DeploymentSpec,
) -> None:
    name = _deployment_name(model.name, provider.name, spec.upstream_model)
    desired = {"weight": spec.weight, "enabled": spec.enabled}
    if row is None:
        Deployment.objects.create(
            model=model, provider=provider, upstream_model=spec.upstream_model, **desired
        )
        changes.created.append(name)
    else:
        changes.record(name, row, _save_changes(row, desired))


def _sync_plans(specs: tuple[PlanSpec, ...], default_name: str | None) -> _Changes:
    """Upsert plans by name; keep (and un-default) plans absent from the file.

    Writes the default last, after every other plan has lost the flag, as the partial unique
    constraint requires. Organizations on a plan whose limits changed have their tenant epochs
    bumped, in one pipelined round, once the transaction commits.
    """
    changes = _Changes()
    rows = {row.name: row for row in Plan.objects.order_by("name")}
    in_file = {spec.name for spec in specs}
    for name, row in rows.items():
        if name not in in_file:
            changes.kept.append(name)
            changes.record(name, row, _save_changes(row, {"is_default": False}))
    limits_changed: list[int] = []
    for spec in sorted(specs, key=lambda s: s.name == default_name):  # stable: default last
        desired = {
            "rpm": spec.rpm,
            "tpm": spec.tpm,
            "max_concurrent": spec.max_concurrent,
            "is_default": spec.name == default_name,
        }
        row = rows.get(spec.name)
        if row is None:
            Plan.objects.create(name=spec.name, **desired)
            changes.created.append(spec.name)
            continue
        changed = _save_changes(row, desired)
        changes.record(spec.name, row, changed)
        if PLAN_LIMIT_FIELDS.intersection(changed):
            limits_changed.append(row.pk)
    if limits_changed:
        bump_tenant_epochs_on_commit(organization_ids_on_plans(limits_changed))
    return changes


# --- Price history and operator changes (the admin) ------------------------------------------


def record_price(model: Model, *, label: str, changed_by: Any = None) -> ModelPrice:
    """Append the model's current prices to its history, effective from now (the transaction's
    time). ``label`` names who set them ("sync_catalog", a staff email)."""
    return ModelPrice.objects.create(
        model=model,
        input_price_per_mtok=model.input_price_per_mtok,
        output_price_per_mtok=model.output_price_per_mtok,
        changed_by=changed_by if getattr(changed_by, "pk", None) else None,
        changed_label=label,
    )


def price_in_force(model_name: str, at: datetime) -> ModelPrice | None:
    """The history row of the public model ``model_name`` in force at ``at``, if any."""
    return (
        ModelPrice.objects.filter(model__name=model_name, effective_from__lte=at)
        .order_by("-effective_from", "-pk")
        .first()
    )


@transaction.atomic
def save_model(model: Model, *, actor: Any) -> dict[str, tuple[Any, Any]]:
    """Save an operator's edit of a catalog model; returns {field: (old, new)} of what changed.

    A new model, or a change of either price, appends a ModelPrice row naming ``actor``; the
    gateway charges the new prices to requests that start once its catalog snapshot has
    refreshed (GATEWAY_CATALOG_CACHE_TTL_S). The audit entry is the caller's.
    """
    editable = [f.name for f in Model._meta.concrete_fields if f.name not in ("id", "updated_at")]
    previous = (
        Model.objects.select_for_update().filter(pk=model.pk).values(*editable).first()
        if model.pk
        else None
    )
    model.save()
    if previous is None:
        record_price(model, label=_label(actor), changed_by=actor)
        return {name: (None, getattr(model, name)) for name in editable}
    changed = {
        name: (previous[name], getattr(model, name))
        for name in editable
        if previous[name] != getattr(model, name)
    }
    if PRICE_FIELDS.intersection(changed):
        record_price(model, label=_label(actor), changed_by=actor)
    return changed


@transaction.atomic
def set_default_model(model: Model) -> Model | None:
    """Make ``model`` the default (enabling it); returns the model that lost the flag."""
    previous = Model.objects.select_for_update().filter(is_default=True).exclude(pk=model.pk)
    old = previous.first()
    previous.update(is_default=False)  # first: at most one default at every statement
    Model.objects.filter(pk=model.pk).update(is_default=True, enabled=True, updated_at=Now())
    model.is_default, model.enabled = True, True
    return old


def _label(actor: Any) -> str:
    return getattr(actor, "email", "") or "system"


@transaction.atomic
def set_enabled(rows: models.QuerySet, enabled: bool) -> list[models.Model]:
    """Enable or disable these providers, models or deployments; returns the rows that changed.

    Gateway workers pick the change up on their next catalog refresh
    (GATEWAY_CATALOG_CACHE_TTL_S). Disabled rows are kept: usage history refers to them.
    """
    changed = list(rows.select_for_update().exclude(enabled=enabled).order_by("pk"))
    values: dict[str, Any] = {"enabled": enabled}
    if any(getattr(f, "auto_now", False) for f in rows.model._meta.concrete_fields):
        values["updated_at"] = Now()
    rows.model.objects.filter(pk__in=[row.pk for row in changed]).update(**values)
    return changed
