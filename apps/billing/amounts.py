"""Stripe's money: integer cents of the billing currency, and how exact USD becomes cents.

The ledger keeps USD to 1e-10 (apps/ledger/money.py). Stripe charges whole cents, so money
crosses to Stripe in exactly two ways:

- a top-up is chosen in whole cents, so `usd_to_cents` converts it exactly or refuses it;
- an invoice is settled in cents: `round_to_cents` rounds its exact total half-up (the same mode
  as the ledger's one rounding rule, at a coarser step), and `allocate_cents` spreads that
  rounded total over the lines so the lines Stripe shows add up to what it charges.
"""

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from apps.ledger.money import InexactAmount, exact_usd

CENTS_PER_USD = 100
CENT = Decimal("0.01")


def usd_to_cents(amount: Decimal) -> int:
    """Whole-cent USD as an integer of cents; raises InexactAmount for a fraction of a cent."""
    amount = exact_usd(amount)
    cents = amount * CENTS_PER_USD
    if cents != cents.to_integral_value():
        raise InexactAmount(f"{amount} USD is not a whole number of cents")
    return int(cents)


def cents_to_usd(cents: int) -> Decimal:
    """Integer cents (from Stripe) as exact USD with 10 decimal places."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"cents must be an int, not {type(cents).__name__}")
    return exact_usd(Decimal(cents).scaleb(-2))


def round_to_cents(amount: Decimal) -> int:
    """Exact USD rounded half-up (ties away from zero) to whole cents, as an integer of cents.
    Used only to settle an invoice's exact total through Stripe."""
    return int((exact_usd(amount) * CENTS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def allocate_cents(amounts: Sequence[Decimal]) -> list[int]:
    """Whole cents per amount (all >= 0, USD) summing to `round_to_cents(sum(amounts))`:
    each amount gets its cents rounded down, and the cents left over go one each to the amounts
    with the largest remainders (the earlier one on a tie). No line moves by a cent or more."""
    exact = [exact_usd(amount) * CENTS_PER_USD for amount in amounts]
    if any(value < 0 for value in exact):
        raise ValueError("cents are allocated over non-negative amounts only")
    floors = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in exact]
    target = round_to_cents(sum((exact_usd(amount) for amount in amounts), Decimal(0)))
    left_over = target - sum(floors)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for index in by_remainder[:left_over]:
        floors[index] += 1
    return floors
