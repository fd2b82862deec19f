"""Forms of the billing pages. Amounts are parsed as Decimal (never float), in whole cents."""

from decimal import Decimal

from django import forms

from apps.billing.errors import BillingRefused
from apps.billing.topups import validate_topup_amount


class BuyCreditsForm(forms.Form):
    amount = forms.DecimalField(label="Amount (USD)", max_digits=12, decimal_places=2)
    save_card = forms.BooleanField(
        label="Save this card for auto-recharge", required=False, initial=False
    )

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        try:
            validate_topup_amount(amount)
        except BillingRefused as refused:
            raise forms.ValidationError(str(refused)) from None
        return amount


class AutoRechargeForm(forms.Form):
    enabled = forms.BooleanField(label="Turn on auto-recharge", required=False)
    threshold = forms.DecimalField(
        label="When the balance falls below (USD)",
        max_digits=12,
        decimal_places=2,
        min_value=Decimal(0),
    )
    amount = forms.DecimalField(label="Add (USD)", max_digits=12, decimal_places=2)

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("enabled") and "amount" in cleaned:
            try:
                validate_topup_amount(cleaned["amount"])
            except BillingRefused as refused:
                self.add_error("amount", str(refused))
        return cleaned


class LowBalanceForm(forms.Form):
    threshold = forms.DecimalField(
        label="Email the owners when the balance falls below (USD; empty: never)",
        max_digits=12,
        decimal_places=2,
        min_value=Decimal(0),
        required=False,
    )
