"""The ledger's side of the tenant's Redis hot counter (keyspace.credit_available).

The gateway seeds the counter from PostgreSQL the first time it needs it and debits it for
every request; the ledger only forwards changes it makes itself (grants, top-ups, adjustments),
and only to a counter that already exists, so a later seed never counts a change twice.
"""

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis

log = logging.getLogger(__name__)

INCRBY_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""

# Both keys share the tenant's hash tag, so one script reads them at the same instant.
READ_HOT_STATE = """
return {redis.call('GET', KEYS[1]) or false, redis.call('HVALS', KEYS[2])}
"""


@dataclass(frozen=True, slots=True)
class HotState:
    """The tenant's Redis money, in 1e-10 USD units, read atomically."""

    credit_units: int | None  # None while the counter has not been seeded
    held_units: int  # sum of open reservations


def add_if_present(org_id: int, units: int) -> int | None:
    """Add `units` (1e-10 USD, signed) to the counter if it exists; the new value, or None."""
    client = sync_redis()
    result = client.eval(INCRBY_IF_EXISTS, 1, keyspace.credit_available(org_id), units)
    return None if result is None else int(result)


def forward_to_hot_counter(org_id: int, units: int) -> None:
    """`add_if_present`, for `transaction.on_commit`: a Redis failure is logged (the reconciler
    will report the drift) instead of failing a ledger change that is already committed."""
    try:
        add_if_present(org_id, units)
    except RedisError:
        log.exception(
            "Could not apply %d units to the hot counter of organization %d", units, org_id
        )


def read_hot_state(org_id: int) -> HotState:
    """The counter and the sum of open holds of one tenant (1e-10 USD), read atomically."""
    credit, held = sync_redis().eval(
        READ_HOT_STATE, 2, keyspace.credit_available(org_id), keyspace.reservations(org_id)
    )
    return HotState(None if credit is None else int(credit), sum(int(value) for value in held))
