""" "Why was I charged this?": one usage row, its cost recomputed from the prices it carries,
and where each figure came from. Four queries."""

from dataclasses import dataclass
from decimal import Decimal

from apps.catalog.models import Deployment, ModelPrice
from apps.catalog.services import price_in_force
from apps.keys.models import APIKey
from apps.ledger.models import LedgerEntry
from apps.ledger.money import quantize_usd
from apps.ledger.services import usage_idempotency_key
from apps.metering.models import UsageRecord

TOKENS_PER_MTOK = 1_000_000


@dataclass(frozen=True)
class CostExplanation:
    """Amounts in USD. ``formula_cost`` is the exact (unrounded) price times tokens; ``rounded``
    is it rounded once, half up, to 1e-10 USD, as the gateway does; ``charged`` is what the
    row says was charged, which is lower only when the credit hold capped it."""

    prompt_price: Decimal  # USD per million tokens, the row's snapshot
    completion_price: Decimal
    prompt_cost: Decimal
    completion_cost: Decimal
    formula_cost: Decimal
    rounded: Decimal
    charged: Decimal
    deployment: Deployment | None
    key: APIKey | None
    catalog_price: ModelPrice | None
    ledger_entry: LedgerEntry | None

    @property
    def figures(self) -> dict[str, str]:
        """The exact amounts written out in full (never in exponent notation)."""
        names = ("prompt_cost", "completion_cost", "formula_cost", "rounded", "charged")
        return {name: format(getattr(self, name), "f") for name in names}

    @property
    def capped_by_hold(self) -> bool:
        return self.charged < self.rounded

    @property
    def snapshot_matches_catalog(self) -> bool | None:
        """Whether the price history agrees with the row's snapshot (None: no history)."""
        if self.catalog_price is None:
            return None
        return (
            self.catalog_price.input_price_per_mtok,
            self.catalog_price.output_price_per_mtok,
        ) == (self.prompt_price, self.completion_price)


def explain_usage(record: UsageRecord) -> CostExplanation:
    """Recompute ``record``'s cost and gather the deployment, key, price history row in force
    when it started and the ledger debit it produced."""
    prompt_cost = record.prompt_tokens * record.input_price_per_mtok / TOKENS_PER_MTOK
    completion_cost = record.completion_tokens * record.output_price_per_mtok / TOKENS_PER_MTOK
    formula = (
        record.prompt_tokens * record.input_price_per_mtok
        + record.completion_tokens * record.output_price_per_mtok
    ) / TOKENS_PER_MTOK
    return CostExplanation(
        prompt_price=record.input_price_per_mtok,
        completion_price=record.output_price_per_mtok,
        prompt_cost=prompt_cost,
        completion_cost=completion_cost,
        formula_cost=formula,
        rounded=quantize_usd(formula),
        charged=record.cost,
        deployment=Deployment.objects.select_related("model", "provider")
        .filter(pk=record.deployment_id)
        .first(),
        key=APIKey.objects.filter(pk=record.key_id).first(),
        catalog_price=price_in_force(record.model, record.started_at),
        ledger_entry=LedgerEntry.objects.filter(
            idempotency_key=usage_idempotency_key(record.request_id)
        ).first(),
    )
