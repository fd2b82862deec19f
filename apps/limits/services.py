"""State changes of rate limits: plan assignment, and telling the gateway that limits moved.

Gateway workers cache each key with its organization and plan, and reload them when the
tenant's epoch in Redis moves (apps.hotstate.keyspace.tenant_epoch). Every change to a plan's
limits, an organization's plan or a key's limits therefore bumps the epoch, after commit so
that a worker reloading at once reads the new rows.
"""

import logging
from collections.abc import Iterable
from typing import Final

import redis
from django.db import transaction

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.limits.models import Plan
from apps.tenants.models import Organization

log = logging.getLogger(__name__)

MAX_LIMIT: Final[int] = 2_147_483_647
"""Largest value a limit column holds (PositiveIntegerField on PostgreSQL)."""


class InvalidLimitError(ValueError):
    """A limit that is not a whole number from 1 to :data:`MAX_LIMIT`."""


def check_limits(**limits: int | None) -> None:
    """Raise InvalidLimitError unless each limit is None (no limit) or an int in 1..MAX_LIMIT.

    Zero is refused: the gateway reads 0 as "no limit", which a caller asking for 0 never means.
    """
    for name, value in limits.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
            raise InvalidLimitError(f"{name} must be a whole number from 1 to {MAX_LIMIT}")


def bump_tenant_epoch(org_id: int) -> bool:
    """Make every gateway worker reload this organization's keys, plan and limits."""
    return bump_tenant_epochs([org_id])


def bump_tenant_epochs(org_ids: Iterable[int]) -> bool:
    """INCR the tenant epoch of each organization, in one pipelined round trip.

    Returns False (after logging a warning) when Redis could not be written: workers then pick
    up the change when their cached copies expire, within GATEWAY_KEY_CACHE_TTL_S.
    """
    ids = sorted(set(org_ids))
    if not ids:
        return True
    try:
        pipeline = sync_redis().pipeline(transaction=False)
        for org_id in ids:
            pipeline.incr(keyspace.tenant_epoch(org_id))
        pipeline.execute()
    except redis.RedisError as error:
        log.warning("could not bump the tenant epoch of organizations %s: %s", ids, error)
        return False
    return True


def bump_tenant_epochs_on_commit(org_ids: Iterable[int]) -> None:
    """Bump these tenants' epochs once the current transaction commits (never if it rolls back)."""
    ids = sorted(set(org_ids))
    if ids:
        transaction.on_commit(lambda: bump_tenant_epochs(ids))


@transaction.atomic
def change_plan(organization: Organization, plan: Plan) -> Organization:
    """Put the organization on ``plan``; its keys get the plan's limits on every worker.

    Returns the organization as saved. Nothing is written, and the epoch is left alone, when it
    is already on that plan.
    """
    locked = Organization.objects.select_for_update().get(pk=organization.pk)
    old = locked.plan
    if locked.plan_id == plan.pk:
        return locked
    locked.plan = plan
    locked.save(update_fields=["plan"])
    log.info(
        "change_plan: organization %s (id %s) from %s to %s",
        locked.name,
        locked.pk,
        old.name if old else "no plan",
        plan.name,
    )
    bump_tenant_epochs_on_commit([locked.pk])
    return locked
