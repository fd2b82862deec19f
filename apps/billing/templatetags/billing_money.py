"""Template filters for money: exact USD without noise digits, cents as dollars, counts."""

from decimal import Decimal

from django import template

from apps.billing.amounts import cents_to_usd
from apps.ledger.money import format_usd

register = template.Library()


@register.filter
def usd(amount: Decimal | None) -> str:
    """Exact USD with at least 2 and at most 10 decimals: `12.50`, `0.0000123`."""
    if amount is None:
        return ""
    text = format_usd(amount)
    whole, fraction = text.split(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"


@register.filter
def cents(value: int | None) -> str:
    """Integer cents as dollars with 2 decimals: 1235 → `12.35`."""
    if value is None:
        return ""
    return format(cents_to_usd(value).quantize(Decimal("0.01")), "f")


@register.filter
def count(value: int | None) -> str:
    """An integer with thin thousands separators: 1234567 → `1,234,567`."""
    return "" if value is None else f"{value:,}"
