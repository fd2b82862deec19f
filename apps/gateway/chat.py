"""`POST /v1/chat/completions`: authenticate, validate, admit, forward, relay, settle."""

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from apps.gateway.admission import Admitted, Ask
from apps.gateway.asgi_io import JSON_HEADERS, SSE_HEADERS, send_response
from apps.gateway.catalog_cache import PublicModel, Route
from apps.gateway.context import RequestContext
from apps.gateway.errors import ApiError, invalid_param, upstream_failed
from apps.gateway.key_cache import KeyRecord
from apps.gateway.metering import Charge, compute_charge, now_ms, usage_event
from apps.gateway.pricing import per_token_units, plain
from apps.gateway.relay import (
    COST_PLACEHOLDER,
    Relabeller,
    StreamOutcome,
    finish_reading,
    relay_stream,
)
from apps.gateway.tokens import count_prompt_tokens
from apps.gateway.upstream import UpstreamFailure
from apps.gateway.validation import ChatRequest, validate_chat_request
from apps.ledger.money import units_to_usd
from apps.metering.events import UsageStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # the first deployment, then one retry on another


@dataclass(slots=True)
class Run:
    """An admitted request on its way upstream, and what settling it needs."""

    ctx: RequestContext
    key: KeyRecord
    request: ChatRequest
    model: PublicModel
    admitted: Admitted
    prompt_tokens: int
    started_at_ms: int
    settled: bool = field(default=False)

    @property
    def token_estimate(self) -> int:
        return self.prompt_tokens + self.admitted.allowance

    def charge(self, usage: dict[str, Any] | None, generated: list[str]) -> Charge:
        return compute_charge(
            self.model,
            self.admitted,
            prompt_estimate=self.prompt_tokens,
            usage=usage,
            generated=generated,
            held=self.admitted.hold_units > 0,
        )

    async def settle(
        self, route: Route, charge: Charge, status: str, ttft_ms: int | None = None
    ) -> None:
        """Record the charge and give back the rest (nothing to do if admitted without
        Redis: fail-open requests are not metered)."""
        self.settled = True
        if not self.admitted.metered:
            return
        event = usage_event(
            request_id=self.ctx.request_id.decode(),
            key_id=self.key.id,
            org_id=self.key.org_id,
            model=self.model,
            route=route,
            charge=charge,
            status=status,
            stream=self.request.stream,
            started_at_ms=self.started_at_ms,
            ttft_ms=ttft_ms,
        )
        await self.ctx.state.admission.settle(
            self.key,
            self.ctx.request_id.decode(),
            token_refund=self.token_estimate - charge.prompt_tokens - charge.completion_tokens,
            cost_units=charge.cost_units,
            event=event,
        )

    async def release(self) -> None:
        """The request produced nothing: give everything back, charge nothing."""
        if self.settled:
            return
        self.settled = True
        if not self.admitted.metered:
            return
        await self.ctx.state.admission.settle(
            self.key,
            self.ctx.request_id.decode(),
            token_refund=self.token_estimate,
            cost_units=0,
            event=None,
        )


async def chat_completions(ctx: RequestContext) -> None:
    started_at_ms = now_ms()
    raw = await ctx.read_body()
    key = await ctx.authenticate()
    request = validate_chat_request(_parse_json(raw))
    model = await ctx.resolve_model(request.model, key)
    prompt_tokens = await count_prompt_tokens(request.body)
    ask = _ask(ctx, request, model, prompt_tokens)
    key, admitted = await ctx.admit(key, ask)
    ctx.headers.extend(admitted.headers)
    _lower_max_tokens_if_needed(request, ask, admitted)
    run = Run(ctx, key, request, model, admitted, prompt_tokens, started_at_ms)
    try:
        routes = model.routes_in_try_order()[:MAX_ATTEMPTS]
        if not routes:
            raise upstream_failed(f"The model `{model.name}` has no available deployment.")
        if request.stream:
            await _stream(run, routes)
        else:
            await _complete(run, routes)
    finally:
        await run.release()


def _parse_json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from None


def _choices(request: ChatRequest) -> int:
    return request.body.get("n") or 1


def _ask(ctx: RequestContext, request: ChatRequest, model: PublicModel, prompt: int) -> Ask:
    per_choice = request.max_tokens or model.max_output_tokens
    if per_choice > model.max_output_tokens:
        name = "max_completion_tokens" if "max_completion_tokens" in request.body else "max_tokens"
        raise invalid_param(
            name, f"`{name}` is {per_choice}; `{model.name}` writes at most "
            f"{model.max_output_tokens} tokens.",
        )  # fmt: skip
    choices = _choices(request)
    return Ask(
        request_id=ctx.request_id.decode(),
        prompt_tokens=prompt,
        allowance=per_choice * choices,
        choices=choices,
        prompt_cost_units=prompt * per_token_units(model.input_price_per_mtok),
        output_price_units=per_token_units(model.output_price_per_mtok),
    )


def _lower_max_tokens_if_needed(request: ChatRequest, ask: Ask, admitted: Admitted) -> None:
    """When credit affords less than asked, the upstream gets the lower `max_tokens` (or
    `max_completion_tokens`, whichever the client sent); finish_reason `length` tells the
    client its answer was cut."""
    if admitted.allowance >= ask.allowance:
        return
    name = "max_completion_tokens" if "max_completion_tokens" in request.body else "max_tokens"
    request.body[name] = admitted.allowance // ask.choices


def _upstream_payload(request: ChatRequest, route: Route) -> bytes:
    body: dict[str, Any] = dict(request.body)
    body["model"] = route.upstream_model
    if request.stream:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(body)


def _with_exact_cost(body: dict[str, Any], cost: str) -> bytes:
    """JSON with `usage.cost` written as a number with its exact decimal digits."""
    body.setdefault("usage", {})["cost"] = COST_PLACEHOLDER
    return orjson.dumps(body).replace(f'"{COST_PLACEHOLDER}"'.encode(), cost.encode(), 1)


async def _complete(run: Run, routes: list[Route]) -> None:
    ctx = run.ctx
    upstream = ctx.state.upstream
    failures: list[UpstreamFailure] = []
    for route in routes:
        try:
            response = await upstream.open(
                route, _upstream_payload(run.request, route), stream=False
            )
            body = await upstream.read_json(route, response)
        except UpstreamFailure as failure:
            log.warning("request %s: %s", ctx.request_id.decode(), failure)
            failures.append(failure)
            continue
        body["model"] = run.model.name
        charge = run.charge(body.get("usage"), _answer_texts(body))
        cost = plain(charge.cost)
        headers = [(b"x-request-cost", cost.encode())]
        if run.admitted.metered:
            left = run.admitted.credit_left_units + run.admitted.hold_units - charge.cost_units
            headers.append((b"x-credits-remaining", plain(units_to_usd(left)).encode()))
        payload = _with_exact_cost(body, cost)
        await send_response(ctx.send, 200, payload, JSON_HEADERS + ctx.headers + headers)
        await run.settle(route, charge, UsageStatus.OK)
        return
    raise _all_failed(failures)


def _answer_texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for choice in body.get("choices") or ():
        content = (choice.get("message") or {}).get("content")
        if isinstance(content, str):
            texts.append(content)
    return texts


async def _stream(run: Run, routes: list[Route]) -> None:
    ctx = run.ctx
    failures: list[UpstreamFailure] = []
    for route in routes:
        payload = _upstream_payload(run.request, route)
        try:
            response = await ctx.state.upstream.open(route, payload, stream=True)
        except UpstreamFailure as failure:
            log.warning("request %s: %s", ctx.request_id.decode(), failure)
            failures.append(failure)
            continue
        outcome = StreamOutcome()
        relabeller = Relabeller(
            run.model.name,
            run.request.include_usage,
            lambda usage: plain(run.charge(usage, []).cost),
        )
        relay = relay_stream(
            ctx.send,
            response,
            relabeller=relabeller,
            headers=SSE_HEADERS + ctx.headers,
            outcome=outcome,
        )
        completed = await ctx.run_unless_client_leaves(relay)
        if not completed:
            response.close()
        try:
            await _settle_stream(run, route, outcome, completed)
        finally:
            if completed and outcome.error is None:
                await finish_reading(response)  # after settling: it only keeps the connection
        return
    raise _all_failed(failures)


async def _settle_stream(run: Run, route: Route, outcome: StreamOutcome, completed: bool) -> None:
    if not completed:
        status = UsageStatus.CANCELLED
    elif outcome.error is not None:
        status = UsageStatus.FAILED
    else:
        status = UsageStatus.OK
    usage = outcome.usage if status == UsageStatus.OK else None
    charge = run.charge(usage, [] if usage else outcome.generated_text())
    ttft = (
        None if outcome.first_token_at_ms is None else outcome.first_token_at_ms - run.started_at_ms
    )
    await run.settle(route, charge, status, ttft)


def _all_failed(failures: list[UpstreamFailure]) -> ApiError:
    tried = "; ".join(str(failure.reason) for failure in failures)
    return upstream_failed(f"The model's upstream is unavailable ({tried}).")
