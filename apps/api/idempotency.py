"""`Idempotency-Key` on POSTs: a retried request gets the first response instead of a second
effect.

The first request with a key claims it (a row under a unique constraint per organization)
and runs in the same transaction as its effect, so a concurrent retry waits on the row and
then replays the stored response. A failed request keeps nothing, so the key can be used
again: a raised error rolls back the effect and the claim together, and a 5xx response a
handler returns drops the claim. The same key with another method, path or body is refused
with 409 `idempotency_key_reused`. Kept responses are forgotten after IDEMPOTENCY_RETENTION
(apps.api.tasks.purge_idempotency_records_task).
"""

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.errors import Conflict
from apps.api.models import IdempotencyRecord
from apps.tenants.models import Organization

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")


def idempotent(*, redact: Iterable[str] = ()) -> Callable:
    """Decorate a POST handler of an OrgAPIView to honour `Idempotency-Key`.

    `redact` names top-level response fields that are never kept (secrets): a replay shows
    them as null.
    """
    hidden = tuple(redact)

    def decorate(handler: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            return run_idempotently(
                request,
                view.access.organization,
                lambda: handler(view, request, *args, **kwargs),
                redact=hidden,
            )

        return wrapper

    return decorate


def run_idempotently(
    request: Request,
    organization: Organization,
    action: Callable[[], Response],
    *,
    redact: Iterable[str] = (),
) -> Response:
    """Run `action` once per idempotency key of `organization`; replay its response after."""
    key = request.headers.get(HEADER)
    if key is None:
        return action()
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationError({HEADER: "Use 1 to 255 visible ASCII characters."})
    fingerprint = request_fingerprint(request)
    with transaction.atomic():
        record, claimed = _claim(organization, key, fingerprint)
        if not claimed:
            return _replay(record, fingerprint)
        response = action()
        if response.status_code >= 500:  # a failure worth retrying: keep no answer
            record.delete()
            return response
        record.response_status = response.status_code
        record.response_body = _kept_body(response.data, redact)
        record.save(update_fields=["response_status", "response_body"])
    return response


def request_fingerprint(request: Request) -> str:
    """SHA-256 of the method, path and JSON body (key order and spacing do not matter)."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{request.method}\n{request.path}\n{body}".encode()).hexdigest()


def _claim(
    organization: Organization, key: str, fingerprint: str
) -> tuple[IdempotencyRecord, bool]:
    """(record, True) when this request claimed the key; (the earlier record, False) if not."""
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                organization=organization, key=key, fingerprint=fingerprint, response_status=0
            )
    except IntegrityError:
        return IdempotencyRecord.objects.get(organization=organization, key=key), False
    return record, True


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise Conflict(
            f"{HEADER} {record.key!r} was used for a different request; use a new key.",
            code="idempotency_key_reused",
        )
    return Response(
        record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"}
    )


def _kept_body(data: Any, redact: Iterable[str]) -> Any:
    if not isinstance(data, dict):
        return data
    return {name: (None if name in redact else value) for name, value in data.items()}
