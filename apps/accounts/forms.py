"""Forms of the account pages: sign-up, throttled login and password reset."""

import math
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from apps.accounts import login_throttle
from apps.accounts.models import User


def client_address(request: HttpRequest | None) -> str:
    """The address login attempts are counted against (the TCP peer)."""
    return (request.META.get("REMOTE_ADDR") if request else None) or "unknown"


class PlainLabels:
    """Labels without Django's trailing colon (screen readers read it out)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignUpForm(PlainLabels, forms.Form):
    """Email and a password that passes AUTH_PASSWORD_VALIDATORS."""

    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(email=email).exists():
            raise ValidationError(
                "An account with this email address exists. Log in or reset your password.",
                code="email_taken",
            )
        return email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            candidate = User(email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as error:
                self.add_error("password", error)
        return cleaned


class ThrottledLoginForm(PlainLabels, AuthenticationForm):
    """Django's login form, refusing every attempt while login_throttle says so."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": (
            "Too many failed sign-in attempts for this account. For your security, signing in "
            "is locked for %(minutes)s more minute(s). You can reset your password meanwhile."
        ),
    }

    @property
    def throttled(self) -> bool:
        return any(error.code == "throttled" for error in self.non_field_errors().as_data())

    def clean(self) -> dict[str, Any]:
        email = (self.cleaned_data.get("username") or "").strip().lower()
        address = client_address(self.request)
        wait = login_throttle.seconds_locked(email, address) if email else 0
        if wait:
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": math.ceil(wait / 60)},
            )
        if email:
            self.cleaned_data["username"] = email
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if email and error.code == "invalid_login":
                login_throttle.record_failure(email, address)
            raise
        login_throttle.record_success(email, address)
        return cleaned


class ResetPasswordForm(PlainLabels, PasswordResetForm):
    """Also mails users who never set a password (owners made by `create_org` or an
    invitation set theirs this way); Django's form skips them."""

    def get_users(self, email: str) -> Iterator[User]:
        return iter(get_user_model().objects.filter(email__iexact=email.strip(), is_active=True))


class NewPasswordForm(PlainLabels, SetPasswordForm):
    """Django's set-password form, with plain labels."""
