"""One /v1 request as it moves through the gateway."""

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from apps.gateway.admission import NOT_SEEDED, STALE, Admitted, Ask
from apps.gateway.asgi_io import (
    Headers,
    Message,
    Receive,
    Scope,
    Send,
    header,
    read_body,
)
from apps.gateway.catalog_cache import PublicModel
from apps.gateway.errors import ApiError, authentication_failed, service_unavailable
from apps.gateway.key_cache import KeyRecord
from apps.gateway.state import GatewayState
from apps.keys.secrets import hash_secret, looks_like_key
from apps.ledger.money import usd_to_units
from apps.ledger.selectors import ledger_balance
from apps.tenants.models import Organization


def ledger_balance_units(org_id: int) -> int:
    """The tenant's ledger balance in 1e-10 USD (runs in a thread; the uncommon path)."""
    close_old_connections()
    return usd_to_units(ledger_balance(Organization(pk=org_id)))


@dataclass(slots=True)
class RequestContext:
    scope: Scope
    receive: Receive
    send: Send
    state: GatewayState
    request_id: bytes
    headers: Headers  # sent with every response to this request
    key_hash: str = ""
    key: KeyRecord | None = None  # once authenticated
    admitted: bool = False  # admission ran and reported the limits

    async def read_body(self) -> bytes:
        return await read_body(self.scope, self.receive, settings.GATEWAY_MAX_BODY_BYTES)

    async def authenticate(self) -> KeyRecord:
        """The key from `Authorization: Bearer …`; 401 for a missing, bad or dead key."""
        value = header(self.scope, b"authorization")
        if value is None:
            raise authentication_failed(
                "Missing API key: send it as `Authorization: Bearer <key>`."
            )
        scheme, _, secret = value.decode("latin-1").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not looks_like_key(secret):
            raise authentication_failed(
                "Malformed API key: expected `Authorization: Bearer <key>`."
            )
        self.key_hash = hash_secret(secret)
        record = await self.state.keys.get(self.key_hash)
        if record is None:
            raise authentication_failed("Incorrect API key provided.")
        if not record.usable_at(int(time.time() * 1000)):
            raise authentication_failed("This API key has been revoked or has expired.")
        self.key = record
        return record

    async def admit(self, key: KeyRecord, ask: Ask) -> tuple[KeyRecord, Admitted]:
        """Run admission. The uncommon cases cost one more round trip: the tenant's limits
        changed (read the key again) or its credit counter is new (seed it from the ledger).
        """
        admission = self.state.admission
        result = await admission.admit(key, ask)
        if result == STALE:
            self.state.keys.forget(self.key_hash)
            key = await self._reload_key()
            result = await admission.admit(key, ask)
        if result == NOT_SEEDED:
            balance_units = await sync_to_async(ledger_balance_units)(key.org_id)
            await admission.seed_credit(key, balance_units)
            result = await admission.admit(key, ask)
        if not isinstance(result, Admitted):
            raise service_unavailable("The request could not be admitted; retry shortly.")
        self.state.last_used.note(key.id)
        self.key, self.admitted = key, True
        return key, result

    async def error_headers(self, error: ApiError) -> Headers:
        """The headers of the answer `error`: ours, plus the key's x-ratelimit-* headers when a
        known key's request was refused before admission reported them (an invalid request,
        an unknown model; not a bad key, a 429, which carries its own, or a server error)."""
        if self.key is None or self.admitted or error.status in (401, 429) or error.status >= 500:
            return self.headers
        return self.headers + await self.state.admission.peek_headers(self.key)

    async def _reload_key(self) -> KeyRecord:
        record = await self.state.keys.get(self.key_hash)
        if record is None or not record.usable_at(int(time.time() * 1000)):
            raise authentication_failed("This API key has been revoked or has expired.")
        return record

    async def resolve_model(self, name: str | None, key: KeyRecord) -> PublicModel:
        """The public model asked for (or the default); 404 unknown, 403 not allowed."""
        catalog = await self.state.catalog.get()
        name = name or catalog.default_model
        model = catalog.models.get(name) if name else None
        if model is None:
            raise ApiError(
                404,
                f"The model `{name}` does not exist or is not available.",
                param="model",
                code="model_not_found",
            )
        if not key.may_use(model.name):
            raise ApiError(
                403,
                f"This API key is not allowed to use the model `{model.name}`.",
                type="permission_error",
                param="model",
                code="model_not_allowed",
            )
        return model

    async def run_unless_client_leaves(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` in this task; cancel it if the client disconnects first. True if it
        completed. The only extra task is `receive()` itself: its message is a disconnect,
        or it comes when the response is complete, which cannot happen before `work` sent its
        last message and stopped running."""
        task = asyncio.current_task()
        assert task is not None
        watch = _DisconnectWatch(task)
        receiving = asyncio.ensure_future(self.receive())
        receiving.add_done_callback(watch.on_message)
        try:
            await work
        except asyncio.CancelledError:
            if not watch.client_left:
                raise
            task.uncancel()
            return False
        finally:
            watch.running = False
            receiving.cancel()
        return True


class _DisconnectWatch:
    """Cancels the request's task when the client disconnects while `work` runs."""

    __slots__ = ("client_left", "running", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.running = True
        self.client_left = False

    def on_message(self, receiving: asyncio.Future[Message]) -> None:
        if receiving.cancelled() or receiving.exception() is not None or not self.running:
            return
        if receiving.result()["type"] == "http.disconnect":
            self.client_left = True
            self.task.cancel()
