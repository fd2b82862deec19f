"""Reads of rate-limit plans."""

from collections.abc import Iterable

from apps.limits.models import Plan
from apps.tenants.models import Organization


def default_plan() -> Plan | None:
    """The plan marked ``is_default`` (given to new organizations), or None (one query)."""
    return Plan.objects.filter(is_default=True).first()


def plan_by_name(name: str) -> Plan:
    """The plan with exactly this name; raises Plan.DoesNotExist."""
    return Plan.objects.get(name=name)


def organization_ids_on_plans(plan_ids: Iterable[int]) -> list[int]:
    """Ids of the organizations on any of these plans, ascending (one query)."""
    return list(
        Organization.objects.filter(plan_id__in=list(plan_ids))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
