"""The catalog as the gateway sees it: an immutable snapshot, refreshed in the background.

A worker loads the enabled models, deployments and providers once, then reloads them every
GATEWAY_CATALOG_CACHE_TTL_S without making any request wait: requests read the snapshot they
find. Catalog and price changes therefore apply to requests that start a few seconds later.
"""

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from apps.catalog.models import Deployment, Model
from apps.gateway.upstream_http import Origin, post_head

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """One deployment: where and how to send a model's requests."""

    deployment_id: int
    provider: str
    chat_url: str
    upstream_model: str
    weight: int
    timeout_s: int
    origin: Origin
    request_head: bytes  # the POST's request line and headers (with the key): never logged

    def __repr__(self) -> str:  # keeps the upstream key out of logs and tracebacks
        return f"Route({self.provider}:{self.upstream_model}, deployment={self.deployment_id})"


@dataclass(frozen=True, slots=True)
class PublicModel:
    """A public model name with its prices (USD per million tokens) and deployments."""

    name: str
    created: int
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    context_window: int
    max_output_tokens: int
    routes: tuple[Route, ...]

    def routes_in_try_order(self) -> list[Route]:
        """Every route, the first drawn by weight, the rest in weighted order for retries."""
        pool = [route for route in self.routes if route.weight > 0]
        ordered: list[Route] = []
        while pool:
            pick = random.choices(pool, weights=[route.weight for route in pool])[0]
            ordered.append(pick)
            pool.remove(pick)
        return ordered


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    models: dict[str, PublicModel]
    default_model: str | None


def _route(deployment: Deployment) -> Route | None:
    provider = deployment.provider
    secret = provider.api_key or (
        os.environ.get(provider.api_key_env, "") if provider.api_key_env else ""
    )
    chat_url = provider.base_url.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    try:
        origin, head = post_head(chat_url, headers)
    except ValueError:
        log.error("provider %s: base URL is not an http(s) URL; not routing to it", provider.name)
        return None
    return Route(
        deployment_id=deployment.pk,
        provider=provider.name,
        chat_url=chat_url,
        upstream_model=deployment.upstream_model,
        weight=deployment.weight,
        timeout_s=provider.timeout_s,
        origin=origin,
        request_head=head,
    )


def load_catalog_snapshot() -> CatalogSnapshot:
    """Read the enabled catalog from the database (runs in a thread)."""
    close_old_connections()
    models: dict[str, PublicModel] = {}
    default_model = None
    deployments = Deployment.objects.filter(enabled=True, provider__enabled=True).select_related(
        "provider"
    )
    routes_by_model: dict[int, list[Route]] = {}
    for deployment in deployments:
        if (route := _route(deployment)) is not None:
            routes_by_model.setdefault(deployment.model_id, []).append(route)
    for model in Model.objects.filter(enabled=True):
        models[model.name] = PublicModel(
            name=model.name,
            created=int(model.updated_at.timestamp()),
            input_price_per_mtok=model.input_price_per_mtok,
            output_price_per_mtok=model.output_price_per_mtok,
            context_window=model.context_window,
            max_output_tokens=model.max_output_tokens,
            routes=tuple(routes_by_model.get(model.pk, ())),
        )
        if model.is_default:
            default_model = model.name
    return CatalogSnapshot(models=models, default_model=default_model)


class CatalogCache:
    """Holds the current snapshot; `get()` never waits once a first snapshot exists (unless
    the TTL is 0, which turns caching off)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._snapshot: CatalogSnapshot | None = None
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self) -> CatalogSnapshot:
        if self._snapshot is None or self._ttl_s == 0:  # 0: no caching (tests)
            await self._refresh()
        elif time.monotonic() - self._loaded_at > self._ttl_s and self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh_in_background())
        assert self._snapshot is not None
        return self._snapshot

    async def _refresh(self) -> None:
        self._snapshot = await sync_to_async(load_catalog_snapshot)()
        self._loaded_at = time.monotonic()

    async def _refresh_in_background(self) -> None:
        try:
            await self._refresh()
        except Exception:
            log.exception("catalog refresh failed; serving the previous snapshot")
            self._loaded_at = time.monotonic()
        finally:
            self._refreshing = None
