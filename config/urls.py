"""Django URLs: admin (and, as they land, dashboard and management API). /v1 is served by
apps.gateway's ASGI app before requests reach Django (see config/asgi.py)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("stripe/", include("apps.billing.urls")),
    path("billing/", include("apps.billing.dashboard_urls")),
    path("", include("apps.dashboard.urls")),
]
