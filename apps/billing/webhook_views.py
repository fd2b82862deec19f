"""`POST /stripe/webhook`: verify, store, answer. Applying the event is a Celery task."""

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.billing.stripe_gateway import InvalidWebhook, verify_webhook
from apps.billing.webhooks import record_event

log = logging.getLogger(__name__)


@csrf_exempt  # Stripe authenticates with its signature, not a cookie
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """400 and nothing stored for a missing, bad or stale signature or a body that is not an
    event; 200 once the event is stored (a repeat is stored once)."""
    try:
        event = verify_webhook(request.body, request.headers.get("Stripe-Signature"))
    except InvalidWebhook as error:
        log.warning("Refused a Stripe webhook: %s", error)
        return HttpResponseBadRequest("invalid Stripe webhook")
    stored, created = record_event(request.body, event)
    return JsonResponse({"received": stored.event_id, "duplicate": not created})
