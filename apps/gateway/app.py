"""The ASGI application in front of Django.

`/v1/*`, `/healthz` and `/readyz` are served here, async end to end with no Django middleware
or request signals on the way; every other path goes to Django (admin, dashboard, API).
"""

import logging
from typing import Any

from apps.gateway import chat, health, metrics, models_api
from apps.gateway.asgi_io import (
    ClientGone,
    Receive,
    Scope,
    Send,
    new_request_id,
    request_id_headers,
    send_error,
)
from apps.gateway.context import RequestContext
from apps.gateway.errors import ApiError
from apps.gateway.state import GatewayState

log = logging.getLogger(__name__)

ASGIApp = Any


class GatewayApp:
    def __init__(self, django_app: ASGIApp) -> None:
        self._django = django_app
        self._state: GatewayState | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith("/v1/"):
                await self._serve_v1(scope, receive, send)
                return
            if path == "/healthz":
                await health.healthz(send)
                return
            if path == "/readyz":
                await health.readyz(send, self.state())
                return
            if path == "/metrics":
                await metrics.serve_metrics(send, self.state().admission.redis_failures)
                return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._django(scope, receive, send)

    def state(self) -> GatewayState:
        """The worker's state; made on first use when the server sends no lifespan events."""
        if self._state is None:
            self._state = GatewayState.create()
        return self._state

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.state()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._state is not None:
                    await self._state.close()
                    self._state = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve_v1(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        headers = request_id_headers(scope, request_id)
        ctx = RequestContext(scope, receive, send, self.state(), request_id, headers)
        try:
            await _dispatch(ctx)
            metrics.count_response(200)
        except ApiError as error:
            metrics.count_response(error.status)
            await send_error(send, error, await ctx.error_headers(error))
        except ClientGone:
            return
        except Exception:
            log.exception("request %s failed", request_id.decode())
            metrics.count_response(500)
            await send_error(send, _internal_error(), ctx.headers)


async def _dispatch(ctx: RequestContext) -> None:
    path: str = ctx.scope["path"]
    method: str = ctx.scope["method"]
    if path == "/v1/chat/completions":
        _require_method(method, "POST")
        await chat.chat_completions(ctx)
    elif path == "/v1/models":
        _require_method(method, "GET")
        await models_api.list_models(ctx)
    elif path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
        _require_method(method, "GET")
        await models_api.retrieve_model(ctx, path[len("/v1/models/") :])
    else:
        raise ApiError(404, f"Unknown endpoint: {method} {path}", code="unknown_url")


def _require_method(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(
            405,
            f"Method {method} is not allowed here; use {allowed}.",
            code="method_not_allowed",
            headers={"allow": allowed},
        )


def _internal_error() -> ApiError:
    return ApiError(500, "The server had an error processing your request.", type="server_error")


__all__ = ["GatewayApp"]
