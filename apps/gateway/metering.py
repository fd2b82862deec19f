"""Turning a finished request into a charge and a usage event.

Policy (also in docs/api.md): the tenant pays for the upstream's reported usage; without it,
for our own count of the prompt and of the text generated. A request is never charged for
more output than it was allowed, nor more than the credit it held. A client that leaves
mid-stream pays for the prompt and the tokens generated until it left. Requests that fail
before the first byte, and refused requests, cost nothing.
"""

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.gateway.admission import Admitted
from apps.gateway.catalog_cache import PublicModel, Route
from apps.gateway.pricing import request_cost
from apps.gateway.tokens import count_completion_tokens
from apps.ledger.money import units_to_usd, usd_to_units
from apps.metering.events import UsageEvent


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Charge:
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal  # USD, 10 decimal places

    @property
    def cost_units(self) -> int:
        return usd_to_units(self.cost)


def compute_charge(
    model: PublicModel,
    admitted: Admitted,
    *,
    prompt_estimate: int,
    usage: dict[str, Any] | None,
    generated: list[str],
    held: bool,
) -> Charge:
    """What the tenant pays for this request (see the module docstring)."""
    if usage and isinstance(usage.get("completion_tokens"), int):
        prompt = int(usage.get("prompt_tokens") or prompt_estimate)
        completion = usage["completion_tokens"]
    else:
        prompt, completion = prompt_estimate, count_completion_tokens(generated)
    completion = min(completion, admitted.allowance)
    cost = request_cost(model, prompt, completion)
    if held:
        cost = min(cost, units_to_usd(admitted.hold_units))
    return Charge(prompt, completion, cost)


def usage_event(
    *,
    request_id: str,
    key_id: int,
    org_id: int,
    model: PublicModel,
    route: Route,
    charge: Charge,
    status: str,
    stream: bool,
    started_at_ms: int,
    ttft_ms: int | None,
) -> list[str]:
    """The usage event of a finished request, as XADD's field arguments."""
    return UsageEvent(
        request_id=request_id,
        org_id=org_id,
        key_id=key_id,
        model=model.name,
        deployment_id=route.deployment_id,
        prompt_tokens=charge.prompt_tokens,
        completion_tokens=charge.completion_tokens,
        input_price_per_mtok=model.input_price_per_mtok,
        output_price_per_mtok=model.output_price_per_mtok,
        cost=charge.cost,
        status=status,
        stream=stream,
        started_at_ms=started_at_ms,
        finished_at_ms=now_ms(),
        ttft_ms=ttft_ms,
    ).to_xadd_arguments()
