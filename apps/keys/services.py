"""State changes of API keys. Each is one transaction; the Redis cut-off follows on commit."""

import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.keys.models import APIKey
from apps.keys.secrets import HASH_VERSION, generate_secret, hash_secret, visible_prefix
from apps.limits.services import bump_tenant_epochs_on_commit, check_limits
from apps.tenants.models import Organization

log = logging.getLogger(__name__)

CUTOFF_MARGIN_S = 60


def create_api_key(
    organization: Organization,
    *,
    name: str = "default",
    created_by: object | None = None,
    expires_at: datetime | None = None,
    allowed_models: Sequence[str] = (),
    rpm: int | None = None,
    tpm: int | None = None,
    max_concurrent: int | None = None,
) -> tuple[APIKey, str]:
    """Create a key and return it with its secret, which is never retrievable again.

    ``rpm`` (requests per minute), ``tpm`` (tokens per minute) and ``max_concurrent``
    (requests in flight) hold the key below its plan; None leaves that limit to the plan.
    Raises InvalidLimitError for a limit that is not a whole number from 1 to MAX_LIMIT.
    """
    check_limits(rpm=rpm, tpm=tpm, max_concurrent=max_concurrent)
    secret = generate_secret()
    key = APIKey.objects.create(
        organization=organization,
        name=name,
        prefix=visible_prefix(secret),
        hashed_secret=hash_secret(secret),
        hash_version=HASH_VERSION,
        created_by=created_by,
        expires_at=expires_at,
        allowed_models=list(allowed_models),
        rpm=rpm,
        tpm=tpm,
        max_concurrent=max_concurrent,
    )
    return key, secret


@transaction.atomic
def set_key_limits(
    key: APIKey, *, rpm: int | None, tpm: int | None, max_concurrent: int | None
) -> APIKey:
    """Replace the key's own limits (None: the plan's limit applies) on every worker.

    Saves only the limits that differ and, when any did, bumps the tenant epoch on commit so
    gateway workers reload the key. Raises InvalidLimitError as :func:`create_api_key` does.
    """
    desired = {"rpm": rpm, "tpm": tpm, "max_concurrent": max_concurrent}
    check_limits(**desired)
    key = APIKey.objects.select_for_update().get(pk=key.pk)
    old = {name: getattr(key, name) for name in desired}
    changed = [name for name, value in desired.items() if old[name] != value]
    if changed:
        for name in changed:
            setattr(key, name, desired[name])
        key.save(update_fields=changed)
        log.info("set_key_limits: API key %s from %s to %s", key.prefix, old, desired)
        bump_tenant_epochs_on_commit([key.organization_id])
    return key


@transaction.atomic
def revoke_api_key(key: APIKey) -> APIKey:
    """Refuse the key from now on, on every worker within one Redis round trip."""
    key = APIKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        transaction.on_commit(lambda: publish_key_cutoff(key))
    return key


@transaction.atomic
def rotate_api_key(key: APIKey, *, grace_seconds: int = 0) -> tuple[APIKey, str]:
    """Issue a replacement key; the old one keeps working for `grace_seconds`, then stops."""
    old = APIKey.objects.select_for_update().get(pk=key.pk)
    new_key, secret = create_api_key(
        old.organization,
        name=old.name,
        created_by=old.created_by,
        expires_at=old.expires_at,
        allowed_models=old.allowed_models,
        # A stored 0 (possible through the admin) means "no limit" to the gateway, as None does.
        rpm=old.rpm or None,
        tpm=old.tpm or None,
        max_concurrent=old.max_concurrent or None,
    )
    cutoff = timezone.now() + timedelta(seconds=grace_seconds)
    if old.expires_at is None or old.expires_at > cutoff:
        old.expires_at = cutoff
        old.save(update_fields=["expires_at"])
    transaction.on_commit(lambda: publish_key_cutoff(old))
    return new_key, secret


def publish_key_cutoff(key: APIKey) -> bool:
    """Tell every gateway worker when this key stops working, ahead of their key caches.

    The marker outlives the cut-off by one cache lifetime, after which every worker has
    reloaded the key from PostgreSQL and enforces the cut-off itself. Returns False when Redis
    could not be written; the cut-off then takes effect within GATEWAY_KEY_CACHE_TTL_S.
    """
    cutoff = key.not_valid_after
    if cutoff is None:
        return True
    now = time.time()
    ttl = max(0.0, cutoff.timestamp() - now) + settings.GATEWAY_KEY_CACHE_TTL_S + CUTOFF_MARGIN_S
    try:
        sync_redis().set(
            keyspace.key_not_valid_after(key.organization_id, key.pk),
            repr(cutoff.timestamp()),
            ex=math.ceil(ttl),
        )
    except redis.RedisError:
        log.warning("could not publish cut-off of API key %s to Redis", key.prefix)
        return False
    return True
