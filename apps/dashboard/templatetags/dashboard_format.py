"""Template filters for money and counts on the dashboard."""

from decimal import ROUND_HALF_UP, Decimal

from django import template

from apps.ledger.money import format_usd

register = template.Library()

DISPLAY_PLACES = 6


@register.filter
def usd(amount: Decimal | None) -> str:
    """USD for people: `$12.50`, `$0.000123`, `-$3.00`. Cents always shown; below a cent up
    to six places (exact figures are in the CSV export and the `title` of each cell)."""
    if amount is None:
        return "—"
    rounded = Decimal(amount).quantize(Decimal(1).scaleb(-DISPLAY_PLACES), ROUND_HALF_UP)
    text = format(abs(rounded), "f").rstrip("0")
    whole, _, fraction = text.partition(".")
    fraction = fraction.ljust(2, "0")
    sign = "-" if rounded < 0 else ""
    return f"{sign}${int(whole):,}.{fraction}"


@register.filter
def usd_exact(amount: Decimal | None) -> str:
    """USD with the ledger's 10 decimal places."""
    return "—" if amount is None else f"{format_usd(Decimal(amount))} USD"


@register.filter
def thousands(value: int | None) -> str:
    """12345 → `12,345`."""
    return "—" if value is None else f"{int(value):,}"


@register.filter
def per_million(price: Decimal) -> str:
    """A price per million tokens: `$0.10`, `$0.0375`."""
    return usd(price)
