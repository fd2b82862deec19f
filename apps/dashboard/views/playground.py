"""The playground: chat with a model through /v1 from the browser, streamed.

The browser never receives a stored secret (only HMACs are stored anyway). The user either
pastes one of the organization's keys, or an owner or admin asks the server for a temporary
playground key: a real key of the organization that expires after PLAYGROUND_KEY_TTL, shown to
that browser once and listed on the keys page like any other (so it can be revoked). The
secret stays in the page's memory; static/dashboard/playground.js streams the answer with
fetch + ReadableStream and shows the usage chunk's tokens and cost."""

from datetime import timedelta

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.catalog.models import Model
from apps.dashboard.access import org_page
from apps.keys.services import create_api_key
from apps.tenants.models import Membership

PLAYGROUND_KEY_TTL = timedelta(hours=1)


@org_page()
def playground(request: HttpRequest, membership: Membership) -> HttpResponse:
    models = Model.objects.filter(enabled=True).order_by("-is_default", "name")
    context = {
        "models": models,
        "can_mint_key": membership.can_manage and request.user.email_verified_at is not None,
    }
    return render(request, "dashboard/playground.html", context)


@never_cache
@require_POST
@org_page(managers_only=True)
def playground_key(request: HttpRequest, membership: Membership) -> HttpResponse:
    """A new key that expires in an hour, as JSON for playground.js (owners and admins)."""
    if request.user.email_verified_at is None:
        return JsonResponse({"error": "Verify your email address first."}, status=403)
    expires_at = timezone.now() + PLAYGROUND_KEY_TTL
    key, secret = create_api_key(
        membership.organization,
        name=f"Playground ({request.user.email})"[:100],
        created_by=request.user,
        expires_at=expires_at,
    )
    return JsonResponse(
        {"secret": secret, "prefix": key.prefix, "expires_at": expires_at.isoformat()}
    )
