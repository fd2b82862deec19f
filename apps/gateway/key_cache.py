"""API key lookup without a database query per request.

Each worker keeps the keys it has seen for GATEWAY_KEY_CACHE_TTL_S. Revocation does not wait
for that: the admission script reads the key's cut-off marker in Redis on every request
(apps.keys.services.publish_key_cutoff), so a revoked key is refused by every worker at once.
Concurrent misses for one key share a single database read.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from redis.exceptions import RedisError

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.keys.selectors import key_by_hash
from apps.ledger.money import usd_to_units

NEGATIVE_TTL_S = 2.0
MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-minute request and token limits and requests in flight; 0 means no limit."""

    rpm: int = 0
    tpm: int = 0
    concurrency: int = 0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the gateway needs to know about a key and its organization."""

    id: int
    org_id: int
    prefix: str
    not_valid_after_ms: int | None  # unix time in ms; None: no expiry and not revoked
    allowed_models: frozenset[str]  # empty: every model
    key_limits: Limits = Limits()
    org_limits: Limits = Limits()
    spending_floor_units: int = 0  # lowest balance allowed, 1e-10 USD (<= 0)
    epoch: int = 0  # the tenant epoch this record was read at
    suspended: bool = False  # the organization is suspended by an operator

    def usable_at(self, now_ms: int) -> bool:
        return self.not_valid_after_ms is None or now_ms < self.not_valid_after_ms

    def may_use(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


def _tenant_epoch(org_id: int) -> int:
    try:
        return int(sync_redis().get(keyspace.tenant_epoch(org_id)) or 0)
    except RedisError:
        return -1  # unknown: the next admission reports the real epoch and we reload


def load_key_record(hashed_secret: str) -> KeyRecord | None:
    """Read one key, its organization and plan from PostgreSQL (runs in a thread).

    The tenant epoch is read first, so a change committed meanwhile shows up as a newer epoch
    at the next admission and the record is read again.
    """
    close_old_connections()
    key = key_by_hash(hashed_secret)
    if key is None:
        return None
    epoch = _tenant_epoch(key.organization_id)
    organization = key.organization
    plan = organization.plan
    cutoff = key.not_valid_after
    return KeyRecord(
        id=key.pk,
        org_id=key.organization_id,
        prefix=key.prefix,
        not_valid_after_ms=None if cutoff is None else int(cutoff.timestamp() * 1000),
        allowed_models=frozenset(key.allowed_models or ()),
        key_limits=Limits(key.rpm or 0, key.tpm or 0, key.max_concurrent or 0),
        org_limits=Limits(plan.rpm, plan.tpm, plan.max_concurrent) if plan else Limits(),
        spending_floor_units=usd_to_units(organization.spending_floor),
        epoch=epoch,
        suspended=organization.suspended_at is not None,
    )


Loader = Callable[[str], Awaitable[KeyRecord | None]]


class KeyCache:
    """hashed secret -> KeyRecord (or None for unknown keys), with expiry."""

    def __init__(self, ttl_s: float, loader: Loader | None = None) -> None:
        self._ttl_s = ttl_s
        self._loader: Loader = loader or sync_to_async(load_key_record)
        self._entries: dict[str, tuple[KeyRecord | None, float]] = {}
        self._pending: dict[str, asyncio.Future[KeyRecord | None]] = {}

    async def get(self, hashed_secret: str) -> KeyRecord | None:
        entry = self._entries.get(hashed_secret)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        pending = self._pending.get(hashed_secret)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._load(hashed_secret)

    async def _load(self, hashed_secret: str) -> KeyRecord | None:
        future: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._pending[hashed_secret] = future
        try:
            record = await self._loader(hashed_secret)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            raise
        finally:
            del self._pending[hashed_secret]
        future.set_result(record)
        self._store(hashed_secret, record)
        return record

    def forget(self, hashed_secret: str) -> None:
        """Drop a record so the next request reads it again (its tenant changed)."""
        self._entries.pop(hashed_secret, None)

    def _store(self, hashed_secret: str, record: KeyRecord | None) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        ttl = self._ttl_s if record is not None else min(self._ttl_s, NEGATIVE_TTL_S)
        self._entries[hashed_secret] = (record, time.monotonic() + ttl)
