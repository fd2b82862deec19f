"""Exact money: USD as Decimal with 10 decimal places, and as integer units of 1e-10 USD.

One rounding rule for the whole platform: ROUND_HALF_UP to 1e-10 USD, applied by
`quantize_usd` and nowhere else. Floats are refused on every path into a money value.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from apps.hotstate.keyspace import MONEY_UNITS_PER_USD

USD_DECIMALS = 10
USD_QUANTUM = Decimal(1).scaleb(-USD_DECIMALS)  # 1e-10 USD, the smallest amount we keep
USD_MAX_DIGITS = 20  # DecimalField(max_digits=20, decimal_places=10): below 1e10 USD
USD_LIMIT = Decimal(10) ** (USD_MAX_DIGITS - USD_DECIMALS)
if 10**USD_DECIMALS != MONEY_UNITS_PER_USD:
    raise RuntimeError("Redis money units and ledger decimal places disagree")


class InexactAmount(ValueError):
    """An amount that is not a finite USD value with at most 10 decimal places."""


def quantize_usd(value: Decimal | int) -> Decimal:
    """`value` (USD) rounded half-up to 1e-10 USD. The platform's only rounding function."""
    return _as_decimal(value).quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)


def exact_usd(value: Decimal | int) -> Decimal:
    """`value` (USD) with exactly 10 decimal places; raises InexactAmount if that would round
    it, if it is not finite, or if it does not fit Decimal(20, 10)."""
    amount = _as_decimal(value)
    if not amount.is_finite():
        raise InexactAmount(f"{amount} is not a finite amount")
    if abs(amount) >= USD_LIMIT:
        raise InexactAmount(f"{amount} USD is too large (at most {USD_LIMIT} exclusive)")
    rounded = quantize_usd(amount)
    if rounded != amount:
        raise InexactAmount(f"{amount} has more than {USD_DECIMALS} decimal places")
    return rounded


def parse_usd(text: str) -> Decimal:
    """A USD amount typed by a person ("12.5", "-3") as an exact Decimal; raises InexactAmount
    for anything that is not a plain finite number with at most 10 decimal places."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise InexactAmount(f"{text!r} is not a number") from None
    return exact_usd(amount)


def usd_to_units(amount: Decimal) -> int:
    """USD (rounded half-up to 1e-10) as an integer of 1e-10 USD, the unit Redis keeps."""
    return int(quantize_usd(amount).scaleb(USD_DECIMALS))


def units_to_usd(units: int) -> Decimal:
    """Integer 1e-10 USD units as USD with 10 decimal places (always exact)."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"money units must be an int, not {type(units).__name__}")
    return quantize_usd(Decimal(units).scaleb(-USD_DECIMALS))


def format_usd(amount: Decimal) -> str:
    """USD as a plain decimal string with exactly 10 places: `12.3400000000`, never `0E-10`."""
    return format(quantize_usd(amount), "f")


def _as_decimal(value: Decimal | int) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"money must be a Decimal or an int, not {type(value).__name__}")
