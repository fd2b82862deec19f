"""Every Redis key Tollgate uses, in one place.

All per-tenant keys carry the hash tag `{o:<org id>}` so that one Lua script can touch every
key of a tenant on Redis Cluster (they share a slot). Global keys have their own tags.
"""


def tenant_tag(org_id: int) -> str:
    return f"{{o:{org_id}}}"


def key_not_valid_after(org_id: int, key_id: int) -> str:
    """Unix time (seconds, decimal string) after which an API key is refused.

    Written when a key is revoked, rotated or its expiry changes; read by the admission script.
    It only has to outlive every worker's cached copy of the key (see GATEWAY_KEY_CACHE_TTL_S).
    """
    return f"{tenant_tag(org_id)}:kna:{key_id}"


KEY_LAST_USED = "{tollgate}:key_last_used"
"""Hash: API key id -> unix time in ms of its latest request, drained into PostgreSQL by Celery."""


# --- admission and settlement (see apps/gateway/admission.py) -------------------------------

MONEY_UNITS_PER_USD = 10**10
"""Redis keeps money as integers of 1e-10 USD (int64: up to about 922 million USD), the same
precision as the ledger, so every hot-counter change is exact integer arithmetic."""


def tenant_epoch(org_id: int) -> str:
    """Integer bumped whenever the tenant's limits, plan, keys or billing settings change;
    gateway workers drop their cached copies of the tenant's keys when it moves."""
    return f"{tenant_tag(org_id)}:epoch"


def credit_available(org_id: int) -> str:
    """Money the tenant may still spend, in 1e-10 USD: ledger balance minus open reservations
    minus usage not yet ingested into PostgreSQL. Absent until first seeded from the ledger."""
    return f"{tenant_tag(org_id)}:credit"


def reservations(org_id: int) -> str:
    """Hash: request id -> money held (1e-10 USD) while the request runs. One entry per
    admitted request, so its length is also the organization's requests in flight."""
    return f"{tenant_tag(org_id)}:holds"


def reservation_deadlines(org_id: int) -> str:
    """Sorted set: request id (followed by " <key id>" when the request holds a slot of its
    key's concurrency limit) scored by the unix time its hold expires (a dead worker's)."""
    return f"{tenant_tag(org_id)}:hold_deadlines"


USAGE_STREAM = "{tollgate}:usage"
"""Stream of finished requests (one entry each, fields in apps/metering/events.py), read by
the Celery ingest task through the consumer group USAGE_GROUP."""
USAGE_GROUP = "ingest"


def token_buckets(org_id: int) -> str:
    """Hash of the tenant's limits (apps/gateway/lua/limits_state.lua): field `k<key id>` the
    key's request and token buckets and its requests in flight, `o` the organization's
    buckets (its requests in flight are its holds), each packed binary; `x` until when the
    hash's expiry is set."""
    return f"{tenant_tag(org_id)}:buckets"


def settled_marker(org_id: int, request_id: str) -> str:
    """Set by the settlement script, so a retried settlement never applies twice."""
    return f"{tenant_tag(org_id)}:settled:{request_id}"
