"""What a request costs, from the prices in force when it started (USD per million tokens)."""

from decimal import Decimal

from apps.gateway.catalog_cache import PublicModel
from apps.ledger.money import quantize_usd

TOKENS_PER_MTOK = 1_000_000
UNITS_PER_USD_PER_MTOK = Decimal(10**10) / TOKENS_PER_MTOK  # price/Mtok -> 1e-10 USD per token


def per_token_units(price_per_mtok: Decimal) -> Decimal:
    """Price of one token in 1e-10 USD (exact, may be fractional)."""
    return price_per_mtok * UNITS_PER_USD_PER_MTOK


def request_cost(model: PublicModel, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """USD, rounded once, half up, to 1e-10."""
    exact = (
        prompt_tokens * model.input_price_per_mtok + completion_tokens * model.output_price_per_mtok
    ) / TOKENS_PER_MTOK
    return quantize_usd(exact)


def plain(value: Decimal) -> str:
    """A decimal written without exponent or trailing zeros, e.g. `0.0000025`."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
