"""State changes of the management API: management tokens and kept idempotent responses."""

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.api.models import IdempotencyRecord, ManagementToken, TokenRole
from apps.audit.services import record_audit
from apps.keys.secrets import HASH_VERSION, VISIBLE_PREFIX_CHARS, hash_secret
from apps.tenants.models import Organization, Role
from apps.tenants.permissions import membership_for, require_owner

log = logging.getLogger(__name__)

MANAGEMENT_TOKEN_PREFIX = "tg_mgmt_"  # noqa: S105 - a prefix, not a secret
IDEMPOTENCY_RETENTION = timedelta(hours=24)


def generate_management_secret() -> str:
    """`tg_mgmt_` + 40 URL-safe random characters."""
    return MANAGEMENT_TOKEN_PREFIX + secrets.token_urlsafe(30)


def looks_like_management_token(secret: str) -> bool:
    return secret.startswith(MANAGEMENT_TOKEN_PREFIX) and 30 <= len(secret) <= 128


@transaction.atomic
def create_management_token(
    organization: Organization,
    *,
    name: str,
    created_by: Any,
    role: str = TokenRole.ADMIN,
    expires_at: datetime | None = None,
) -> tuple[ManagementToken, str]:
    """A new token for `organization` and its secret, which is never retrievable again.

    Only owners create tokens (PermissionDenied otherwise); a token acts as an admin or, with
    role member, read-only, and stops working when its creator stops being an owner.
    """
    if role not in TokenRole.values:
        raise ValueError(f"A management token's role is one of {', '.join(TokenRole.values)}.")
    require_owner(membership_for(created_by, organization.pk))
    secret = generate_management_secret()
    token = ManagementToken.objects.create(
        organization=organization,
        name=name,
        role=role,
        prefix=secret[: len(MANAGEMENT_TOKEN_PREFIX) + VISIBLE_PREFIX_CHARS],
        hashed_secret=hash_secret(secret),
        hash_version=HASH_VERSION,
        created_by=created_by,
        expires_at=expires_at,
    )
    record_audit(
        actor=created_by, action="api.create_management_token", target=token, after={"role": role}
    )
    log.info("management token %s created for organization %s", token.prefix, organization.pk)
    return token, secret


@transaction.atomic
def revoke_management_token(token: ManagementToken, *, acting_user: Any) -> ManagementToken:
    """Refuse the token from the next request on. Owners only; revoking twice is harmless."""
    require_owner(membership_for(acting_user, token.organization_id))
    locked = ManagementToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        record_audit(actor=acting_user, action="api.revoke_management_token", target=locked)
        log.info("management token %s revoked", locked.prefix)
    return locked


def authenticate_management_token(secret: str) -> ManagementToken | None:
    """The active token with this secret whose creator is still an owner, or None.

    Notes the use at most once a minute (one conditional UPDATE)."""
    if not looks_like_management_token(secret):
        return None
    token = (
        ManagementToken.objects.select_related("organization", "created_by")
        .filter(hashed_secret=hash_secret(secret))
        .first()
    )
    if token is None or not token.is_active() or not _creator_is_owner(token):
        return None
    _note_use(token)
    return token


def purge_idempotency_records(now: datetime | None = None) -> int:
    """Forget responses kept longer than IDEMPOTENCY_RETENTION; returns how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_RETENTION
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _creator_is_owner(token: ManagementToken) -> bool:
    creator = token.created_by
    if creator is None or not creator.is_active:
        return False
    return creator.memberships.filter(
        organization_id=token.organization_id, role=Role.OWNER
    ).exists()


def _note_use(token: ManagementToken) -> None:
    now = timezone.now()
    recent = now - timedelta(minutes=1)
    tokens = ManagementToken.objects.filter(pk=token.pk).exclude(last_used_at__gte=recent)
    if tokens.update(last_used_at=now):
        token.last_used_at = now
