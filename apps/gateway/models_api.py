"""`GET /v1/models` and `GET /v1/models/{id}`: only the models the key may use."""

import orjson

from apps.gateway.admission import Ask
from apps.gateway.asgi_io import JSON_HEADERS, send_response
from apps.gateway.catalog_cache import PublicModel
from apps.gateway.context import RequestContext
from apps.gateway.errors import ApiError
from apps.gateway.key_cache import KeyRecord

OWNER = "tollgate"


def _model_object(model: PublicModel) -> dict[str, object]:
    return {"id": model.name, "object": "model", "created": model.created, "owned_by": OWNER}


async def _admit_and_release(ctx: RequestContext) -> KeyRecord:
    """Listing models counts as a request against the limits, and holds nothing."""
    key = await ctx.authenticate()
    request_id = ctx.request_id.decode()
    key, admitted = await ctx.admit(key, Ask(request_id))
    ctx.headers.extend(admitted.headers)
    if admitted.metered:  # frees the in-flight slot
        await ctx.state.admission.settle(key, request_id, token_refund=0, cost_units=0, event=None)
    return key


async def list_models(ctx: RequestContext) -> None:
    key = await _admit_and_release(ctx)
    catalog = await ctx.state.catalog.get()
    data = [_model_object(m) for m in catalog.models.values() if key.may_use(m.name)]
    body = orjson.dumps({"object": "list", "data": data})
    await send_response(ctx.send, 200, body, JSON_HEADERS + ctx.headers)


async def retrieve_model(ctx: RequestContext, model_id: str) -> None:
    key = await _admit_and_release(ctx)
    catalog = await ctx.state.catalog.get()
    model = catalog.models.get(model_id)
    if model is None or not key.may_use(model.name):
        raise ApiError(
            404,
            f"The model `{model_id}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    await send_response(
        ctx.send, 200, orjson.dumps(_model_object(model)), JSON_HEADERS + ctx.headers
    )
