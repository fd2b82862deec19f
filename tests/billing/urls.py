"""The project's URLs plus billing's dashboard and API routes, mounted where the project will
include them (/billing/ and /api/v1/billing/)."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("billing/", include("apps.billing.dashboard_urls")),
    path("api/v1/billing/", include("apps.billing.api_urls")),
    *project_urlpatterns,
]
