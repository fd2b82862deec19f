"""Writing the audit trail. Called inside the transaction of the change it records, so an
audit row exists exactly when the change does."""

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models

from apps.audit.models import AuditEntry

JsonValue = str | int | bool | None | list[Any] | dict[str, Any]
TARGET_REPR_MAX = 300


def record_audit(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    target_repr: str = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
    actor_label: str = "",
) -> AuditEntry:
    """Append one audit entry naming ``actor`` (a user, or None with an ``actor_label``).

    ``target`` fills the type, id and repr of the row acted upon; the explicit arguments
    override it (for targets that are not a row). ``before``/``after`` are converted with
    :func:`jsonable`, so Decimals stay exact as strings.
    """
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_repr = target_repr or str(target)
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label or label_of(actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_repr=target_repr[:TARGET_REPR_MAX],
        before=jsonable(dict(before or {})),
        after=jsonable(dict(after or {})),
        reason=reason,
    )


def label_of(actor: Any) -> str:
    """How an actor is named in the trail: a user's email, else "system"."""
    return getattr(actor, "email", "") or "system"


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named field values of ``instance`` (foreign keys by id), ready for the trail."""
    values = {}
    for name in fields:
        field = instance._meta.get_field(name)
        values[name] = getattr(instance, field.attname)
    return jsonable(values)


def changed_values(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The entries of two snapshots that differ, as (old values, new values)."""
    names = [name for name in after if before.get(name) != after[name]]
    return {name: before.get(name) for name in names}, {name: after[name] for name in names}


def jsonable(value: Any) -> JsonValue:
    """``value`` as JSON: Decimal as its exact string, dates as ISO 8601, containers deeply."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)
