"""Billing settings: each read from django.conf.settings at call time, with the default used when
the project does not define it. Money settings are text (never floats) parsed to exact USD."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from apps.ledger.money import parse_usd

# Defaults of the settings only billing reads (config/settings.py may override each one).
DEFAULTS: dict[str, object] = {
    "STRIPE_SECRET_KEY": "",
    "STRIPE_WEBHOOK_SECRET": "",
    "STRIPE_API_BASE": "",  # empty: Stripe's own API
    "STRIPE_CONNECT_TIMEOUT_S": 5.0,  # seconds to open a connection to Stripe
    "STRIPE_READ_TIMEOUT_S": 30.0,  # seconds to wait for Stripe's answer
    "STRIPE_MAX_NETWORK_RETRIES": 2,  # the SDK retries with the same idempotency key
    "STRIPE_WEBHOOK_TOLERANCE_S": 300,  # oldest signature timestamp accepted, seconds
    "STRIPE_EVENT_MAX_ATTEMPTS": 8,  # an event that cannot be applied is retried this often
    "BILLING_CURRENCY": "usd",
    "TOPUP_MIN_USD": "5",
    "TOPUP_MAX_USD": "10000",
    "BILLING_PERIOD": "monthly",  # monthly, weekly or daily (UTC calendar periods)
    "BILLING_CLOSE_GRACE_S": 3600,  # a period is closed this long after it ended
    "AUTO_RECHARGE_MAX_PER_HOUR": 3,
    "INVOICE_NUMBER_PREFIX": "TG-",
    "CREDIT_NOTE_NUMBER_PREFIX": "TG-CN-",
    "INVOICE_DAYS_UNTIL_DUE": 30,
    "OPERATOR_COMPANY_NAME": "Tollgate operator",
    "OPERATOR_COMPANY_ADDRESS": "",
    "OPERATOR_COMPANY_EMAIL": "",
    "OPERATOR_COMPANY_TAX_ID": "",
    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
}


def setting(name: str) -> object:
    """The project's value of `name`, or billing's default."""
    return getattr(settings, name, DEFAULTS[name])


def text_setting(name: str) -> str:
    return str(setting(name))


def int_setting(name: str) -> int:
    return int(str(setting(name)))


def seconds_setting(name: str) -> float:
    """A duration in seconds (int or decimal text; a float here is a timeout, not money)."""
    return float(str(setting(name)))


def currency() -> str:
    """The ISO currency code, lower case, every Stripe amount is in (only usd is supported)."""
    return text_setting("BILLING_CURRENCY").lower()


def topup_limits() -> tuple[Decimal, Decimal]:
    """(minimum, maximum) USD of one top-up, inclusive."""
    return parse_usd(text_setting("TOPUP_MIN_USD")), parse_usd(text_setting("TOPUP_MAX_USD"))


def missing_stripe_settings() -> list[str]:
    """Names of the settings an operator must set before credits can be bought."""
    return [
        name
        for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")
        if not text_setting(name).strip()
    ]


def stripe_configured() -> bool:
    return not missing_stripe_settings()


@dataclass(frozen=True, slots=True)
class OperatorCompany:
    """Who issues the invoices (printed on every invoice)."""

    name: str
    address: str
    email: str
    tax_id: str


def operator_company() -> OperatorCompany:
    return OperatorCompany(
        name=text_setting("OPERATOR_COMPANY_NAME"),
        address=text_setting("OPERATOR_COMPANY_ADDRESS"),
        email=text_setting("OPERATOR_COMPANY_EMAIL"),
        tax_id=text_setting("OPERATOR_COMPANY_TAX_ID"),
    )
