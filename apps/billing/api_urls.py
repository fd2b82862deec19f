"""Management API routes of billing, included by apps/api/urls.py under /api/v1/billing/."""

from django.urls import path

from apps.billing import api_views

app_name = "billing_api"
urlpatterns = [
    path("<int:org_id>/topups/", api_views.TopUpsView.as_view(), name="topups"),
    path("<int:org_id>/invoices/", api_views.InvoicesView.as_view(), name="invoices"),
    path(
        "<int:org_id>/invoices/<int:invoice_id>/",
        api_views.InvoiceView.as_view(),
        name="invoice",
    ),
    path(
        "<int:org_id>/invoices/<int:invoice_id>/pdf/",
        api_views.InvoicePdfView.as_view(),
        name="invoice_pdf",
    ),
]
