"""API keys: list (every member), create and revoke (owners and admins only).

A new key's secret is rendered once, in the response to the POST that created it, with
`Cache-Control: no-store`; it is never stored, put in a URL, a message or a log."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.dashboard.access import org_page
from apps.dashboard.forms import CreateKeyForm
from apps.dashboard.selectors import key_of, keys_of
from apps.keys.services import create_api_key, revoke_api_key
from apps.tenants.models import Membership


def _keys_page(
    request: HttpRequest,
    membership: Membership,
    form: CreateKeyForm | None = None,
    *,
    secret: str = "",
) -> HttpResponse:
    organization = membership.organization
    context = {
        "keys": keys_of(organization),
        "form": form or CreateKeyForm(organization=organization),
        "secret": secret,
        "email_verified": request.user.email_verified_at is not None,
    }
    return render(request, "dashboard/keys.html", context)


@org_page()
def keys(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _keys_page(request, membership)


@never_cache
@require_POST
@org_page(managers_only=True)
def create_key(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Create a key and show its secret this once."""
    form = CreateKeyForm(request.POST, organization=membership.organization)
    if request.user.email_verified_at is None:
        form.add_error(None, "Verify your email address before creating keys.")
    if not form.is_valid():
        return _keys_page(request, membership, form)
    data = form.cleaned_data
    _, secret = create_api_key(
        membership.organization,
        name=data["name"],
        created_by=request.user,
        expires_at=form.expires_at,
        allowed_models=data["allowed_models"],
        rpm=data["rpm"],
        tpm=data["tpm"],
        max_concurrent=data["max_concurrent"],
    )
    return _keys_page(request, membership, secret=secret)


@require_http_methods(["GET", "POST"])
@org_page(managers_only=True)
def revoke_key(request: HttpRequest, membership: Membership, key_id: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes (at once, on every gateway worker)."""
    key = key_of(membership.organization, key_id)
    if request.method == "POST":
        revoke_api_key(key)
        messages.success(request, f"Revoked {key.name} ({key.prefix}…).")
        return redirect("dashboard:keys", org_id=membership.organization_id)
    return render(request, "dashboard/key_revoke.html", {"key": key})
