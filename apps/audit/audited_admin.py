"""Admin building blocks: a ModelAdmin whose saves and deletes leave audit entries, and the
permission check of the named operator actions (apps.audit.models.OperatorAction)."""

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.forms import BaseModelFormSet, ModelForm
from django.http import HttpRequest

from apps.audit.services import changed_values, jsonable, record_audit


def mask_secret(value: str) -> str:
    """A secret as the trail and the lists show it: its last four characters at most."""
    if not value:
        return ""
    return f"…{value[-4:]}" if len(value) > 12 else "…"


def has_operator_permission(request: HttpRequest, codename: str) -> bool:
    """Whether the staff user may take the named operator action (superusers always may)."""
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(f"audit.{codename}"))


def require_operator_permission(request: HttpRequest, codename: str) -> None:
    """Raise PermissionDenied (403) unless the user may take the named operator action."""
    if not has_operator_permission(request, codename):
        raise PermissionDenied(f"You may not {codename.replace('_', ' ')}.")


class AuditedModelAdmin(admin.ModelAdmin):
    """Records an audit entry for every add, change and delete made through this admin,
    including its inlines, with the values of the fields that changed.

    ``audit_fields`` lists the recorded fields (None: every concrete field but the primary
    key); ``audit_masks`` maps a field to a function that hides it (secrets).
    """

    audit_fields: tuple[str, ...] | None = None
    audit_masks: dict[str, Callable[[Any], str]] = {}

    def audit_action(self, verb: str, obj: models.Model | None = None) -> str:
        """The action name of a generic change: "<app>.<model>.<verb>"."""
        return f"{(obj or self.model)._meta.label_lower}.{verb}"

    def audit_snapshot(self, obj: models.Model) -> dict[str, Any]:
        """The recorded field values of ``obj``, masked where needed."""
        names = self.audit_fields or [
            f.name for f in obj._meta.concrete_fields if not f.primary_key
        ]
        return self._masked({name: _field_value(obj, name) for name in names})

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        before = {}
        if change:
            stored = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = self.audit_snapshot(stored) if stored is not None else {}
        self.save_audited(request, obj, form, change)
        old, new = changed_values(before, self.audit_snapshot(obj))
        if new or not change:
            verb = "update" if change else "create"
            record_audit(
                actor=request.user,
                action=self.audit_action(verb),
                target=obj,
                before=old,
                after=new,
            )

    def save_audited(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        """Write the object; override to route the write through a service."""
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before, pk, text = self.audit_snapshot(obj), obj.pk, str(obj)
        super().delete_model(request, obj)
        record_audit(
            actor=request.user,
            action=self.audit_action("delete"),
            target_type=self.model._meta.label_lower,
            target_id=pk,
            target_repr=text,
            before=before,
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Delete one by one, so each deletion has its audit entry."""
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: BaseModelFormSet, change: bool
    ) -> None:
        initial = {id(f.instance): (f.instance.pk, dict(f.initial)) for f in formset.initial_forms}
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self._audit_inline(
                request, obj, "create", before={}, after=self._inline_snapshot(obj, formset)
            )
        for obj, fields in formset.changed_objects:
            _, values = initial[id(obj)]
            before = self._masked(
                {name: _normalized(obj, name, values.get(name)) for name in fields}
            )
            after = self._masked({name: _field_value(obj, name) for name in fields})
            self._audit_inline(request, obj, "update", before=before, after=after)
        for obj in formset.deleted_objects:
            pk, values = initial[id(obj)]
            self._audit_inline(request, obj, "delete", before=self._masked(values), after={}, pk=pk)

    def _inline_snapshot(self, obj: models.Model, formset: BaseModelFormSet) -> dict[str, Any]:
        names = [name for name in formset.form.base_fields if _is_concrete(obj, name)]
        return self._masked({name: _field_value(obj, name) for name in names})

    def _audit_inline(
        self,
        request: HttpRequest,
        obj: models.Model,
        verb: str,
        *,
        before: dict[str, Any],
        after: dict[str, Any],
        pk: Any = None,
    ) -> None:
        record_audit(
            actor=request.user,
            action=self.audit_action(verb, obj),
            target_type=obj._meta.label_lower,
            target_id=pk if pk is not None else obj.pk,
            target_repr=str(obj),
            before=before,
            after=after,
        )

    def _masked(self, values: dict[str, Any]) -> dict[str, Any]:
        masked = {
            name: self.audit_masks[name](value) if name in self.audit_masks else value
            for name, value in values.items()
        }
        return dict(jsonable(masked))  # type: ignore[arg-type]


def audit_each(
    request: HttpRequest,
    rows: Iterable[models.Model],
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """One audit entry per row for a bulk admin action that set the same values on each."""
    for row in rows:
        record_audit(actor=request.user, action=action, target=row, before=before, after=after)


def _is_concrete(obj: models.Model, name: str) -> bool:
    try:
        return obj._meta.get_field(name).concrete
    except FieldDoesNotExist:  # a form-only field: not recorded
        return False


def _field_value(obj: models.Model, name: str) -> Any:
    return _normalized(obj, name, getattr(obj, obj._meta.get_field(name).attname))


def _normalized(obj: models.Model, name: str, value: Any) -> Any:
    """Decimals at their column's scale, so "2.5" typed and 2.5000000000 stored compare equal."""
    field = obj._meta.get_field(name)
    if isinstance(field, models.DecimalField) and isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-field.decimal_places))
    return value
