"""Forms of the operator actions. Money fields are exact decimals (USD, 10 places), parsed
from the text typed, never through a float."""

import uuid
from decimal import Decimal

from django import forms

from apps.ledger.money import USD_DECIMALS, USD_MAX_DIGITS
from apps.limits.models import Plan
from apps.tenants.models import BillingMode

REASON_HELP = "Required. Stored with the change in the audit log (and the ledger memo)."


def usd_field(label: str, **options: object) -> forms.DecimalField:
    """An exact USD amount: at most 10 decimal places, parsed from text."""
    return forms.DecimalField(
        max_digits=USD_MAX_DIGITS, decimal_places=USD_DECIMALS, label=label, **options
    )


class ReasonForm(forms.Form):
    """An action that needs only a reason (suspend, unsuspend)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)


class GrantCreditsForm(ReasonForm):
    """Grant (positive) or deduct (negative) credits.

    The idempotency key is made when the form is shown, so posting it twice (a double click,
    a browser retry) grants once.
    """

    amount = usd_field("Amount (USD)", help_text="Positive grants credits; negative deducts them.")
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)
    field_order = ("amount", "reason", "idempotency_key")

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("initial", {"idempotency_key": f"admin-grant:{uuid.uuid4()}"})
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("The amount must not be zero.")
        return amount


class RefundTopUpForm(ReasonForm):
    """Refund (part of) a paid top-up to its card; the key makes a double post refund once."""

    amount = usd_field("Amount (USD)", help_text="Whole cents, at most what is left to refund.")
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)
    field_order = ("amount", "reason", "idempotency_key")

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("initial", {"idempotency_key": f"admin-refund:{uuid.uuid4()}"})
        super().__init__(*args, **kwargs)


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.order_by("name"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Optional."
    )


class CreditLimitForm(ReasonForm):
    billing_mode = forms.ChoiceField(choices=BillingMode.choices)
    credit_limit = usd_field(
        "Credit limit (USD)",
        min_value=Decimal(0),
        help_text="Post-paid organizations may spend down to minus this amount.",
    )
    field_order = ("billing_mode", "credit_limit", "reason")
