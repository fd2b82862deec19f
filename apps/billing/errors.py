"""Errors of billing services that views and tasks turn into answers."""


class BillingNotConfigured(RuntimeError):
    """Stripe settings are missing; `missing` names them."""

    def __init__(self, missing: list[str]):
        super().__init__("Set " + " and ".join(missing) + " to sell credits through Stripe.")
        self.missing = missing


class BillingRefused(ValueError):
    """A billing request that breaks a rule (amount out of range, no saved card…); the message
    is shown to the person who asked."""


class EventDataError(ValueError):
    """A Stripe event that can never be applied (wrong currency, amounts that disagree…)."""


class EventNotReady(RuntimeError):
    """A Stripe event that cannot be applied yet (it refers to something another event has not
    told us about): it is retried later."""
