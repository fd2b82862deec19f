"""Routes under /stripe/ (config/urls.py): Stripe's webhook."""

from django.urls import path

from apps.billing.webhook_views import stripe_webhook

app_name = "billing"
urlpatterns = [
    path("webhook", stripe_webhook, name="stripe_webhook"),
]
