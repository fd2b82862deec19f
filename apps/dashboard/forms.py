"""Forms of the dashboard pages."""

from datetime import UTC, date, datetime, time
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.accounts.forms import PlainLabels
from apps.catalog.models import Model
from apps.dashboard.selectors import CHART_DAYS, UsageFilters, keys_of, models_used
from apps.keys.models import APIKey
from apps.limits.services import MAX_LIMIT
from apps.tenants.models import Organization, Role

MAX_USAGE_RANGE_DAYS = 366


def _limit_field(label: str, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


class CreateKeyForm(PlainLabels, forms.Form):
    """A new API key: a name, and optionally an expiry day, allowed models and own limits
    (which may only be lower than the organization's plan)."""

    name = forms.CharField(label="Name", max_length=100, initial="default")
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        help_text="Optional. The key stops working at 00:00 UTC on this day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    allowed_models = forms.MultipleChoiceField(
        label="Allowed models",
        required=False,
        help_text="Optional. None ticked: every model.",
        widget=forms.CheckboxSelectMultiple,
    )
    rpm = _limit_field("Requests per minute", "Optional; only lower than the plan's.")
    tpm = _limit_field("Tokens per minute", "Optional; only lower than the plan's.")
    max_concurrent = _limit_field("Requests in flight", "Optional; only lower than the plan's.")

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        names = Model.objects.filter(enabled=True).order_by("name").values_list("name", flat=True)
        self.fields["allowed_models"].choices = [(name, name) for name in names]

    def clean_expires_on(self) -> date | None:
        day = self.cleaned_data["expires_on"]
        if day is not None and day <= timezone.now().astimezone(UTC).date():
            raise ValidationError("Pick a day after today.")
        return day

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        plan = self.organization.plan
        if plan is not None:
            for name in ("rpm", "tpm", "max_concurrent"):
                value, ceiling = cleaned.get(name), getattr(plan, name)
                if value is not None and ceiling and value > ceiling:
                    self.add_error(name, f"Your plan allows {ceiling}; set a lower value or none.")
        return cleaned

    @property
    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        return None if day is None else datetime.combine(day, time(), UTC)


class UsageFilterForm(PlainLabels, forms.Form):
    """Filters of the usage page, read from the query string."""

    key = forms.ModelChoiceField(
        label="Key", queryset=APIKey.objects.none(), required=False, empty_label="All keys"
    )
    model = forms.ChoiceField(label="Model", required=False)
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"].queryset = keys_of(organization)
        self.fields["key"].label_from_instance = lambda key: f"{key.name} ({key.prefix}…)"
        models = models_used(organization)
        self.fields["model"].choices = [("", "All models"), *((m, m) for m in models)]
        default = UsageFilters.last_days()
        self.fields["start"].initial, self.fields["end"].initial = default.start, default.end

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        default = UsageFilters.last_days()
        start = cleaned.get("start") or default.start
        end = cleaned.get("end") or default.end
        if start > end:
            raise ValidationError("“From” must not be after “To”.")
        if (end - start).days >= MAX_USAGE_RANGE_DAYS:
            raise ValidationError(f"Pick at most {MAX_USAGE_RANGE_DAYS} days.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def filters(self) -> UsageFilters:
        """The valid filters, or the default (last CHART_DAYS days) for an invalid form."""
        if not self.is_valid():
            return UsageFilters.last_days(CHART_DAYS)
        data = self.cleaned_data
        return UsageFilters(
            start=data["start"], end=data["end"], key=data["key"], model=data["model"] or ""
        )


class RenameOrganizationForm(PlainLabels, forms.Form):
    name = forms.CharField(label="Organization name", max_length=200)

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()


class CreateOrganizationForm(RenameOrganizationForm):
    def clean_name(self) -> str:
        name = super().clean_name()
        if Organization.objects.filter(name=name).exists():
            raise ValidationError("An organization with this name exists; pick another.")
        return name


class InviteForm(PlainLabels, forms.Form):
    email = forms.EmailField(
        label="Email address", widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class RoleForm(PlainLabels, forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)
