"""Account pages: sign-up, email verification, login (throttled), logout, password reset."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts import email_verification
from apps.accounts.forms import (
    NewPasswordForm,
    ResetPasswordForm,
    SignUpForm,
    ThrottledLoginForm,
)
from apps.accounts.models import User
from apps.accounts.services import EmailTaken, mark_email_verified, sign_up

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and its first organization, log in and send the verification mail."""
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    form = SignUpForm(request.POST or None, initial={"email": request.GET.get("email", "")})
    if request.method == "POST" and form.is_valid():
        try:
            result = sign_up(form.cleaned_data["email"], form.cleaned_data["password"])
        except EmailTaken:
            form.add_error("email", "An account with this email address exists.")
        else:
            login(request, result.user, backend=MODEL_BACKEND)
            _send_verification(request, result.user)
            first_page = reverse("dashboard:overview", kwargs={"org_id": result.organization.pk})
            return redirect(_safe_next(request) or first_page)
    return render(request, "accounts/signup.html", {"form": form, "next": _safe_next(request)})


def _send_verification(request: HttpRequest, user: User) -> None:
    if email_verification.send_verification_email(user):
        messages.success(request, f"We sent a verification link to {user.email}.")
    else:
        messages.error(request, "We could not send the verification email; try again later.")


def _safe_next(request: HttpRequest) -> str:
    """The `next` parameter when it points into this site, else ""."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """Mark the address verified when the link is genuine and fresh."""
    user = email_verification.user_for_token(token)
    if user is None:
        return render(request, "accounts/verify_failed.html", status=400)
    mark_email_verified(user)
    return render(request, "accounts/verified.html", {"verified_email": user.email})


@login_required
@require_POST
def resend_verification(request: HttpRequest) -> HttpResponse:
    """Send the verification link again to the logged-in user."""
    if request.user.email_verified_at is None:
        _send_verification(request, request.user)
    return redirect(_safe_next(request) or "dashboard:home")


class LoginView(auth_views.LoginView):
    """Django's login with ThrottledLoginForm; a lockout answers 429."""

    template_name = "accounts/login.html"
    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: ThrottledLoginForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response

    def get_default_redirect_url(self) -> str:
        return str(reverse_lazy("dashboard:home"))


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("accounts:login")


def _email_context() -> dict[str, Any]:
    return {"public_base_url": settings.PUBLIC_BASE_URL}


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ResetPasswordForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def dispatch(self, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.extra_email_context = _email_context()
        return super().dispatch(*args, **kwargs)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    form_class = NewPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
