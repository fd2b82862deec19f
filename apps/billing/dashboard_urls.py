"""Dashboard pages of billing; include at /billing/ (`path("billing/", include(...))`)."""

from django.urls import path

from apps.billing import views

app_name = "billing_dashboard"
urlpatterns = [
    path("<int:org_id>/", views.overview, name="overview"),
    path("<int:org_id>/buy/", views.buy, name="buy"),
    path("<int:org_id>/buy/done/", views.topup_done, name="topup_done"),
    path("<int:org_id>/auto-recharge/", views.recharge_settings, name="recharge_settings"),
    path("<int:org_id>/low-balance/", views.low_balance_settings, name="low_balance_settings"),
    path("<int:org_id>/ledger/", views.ledger, name="ledger"),
    path("<int:org_id>/invoices/", views.invoices, name="invoices"),
    path("<int:org_id>/invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path(
        "<int:org_id>/invoices/<int:invoice_id>/document/",
        views.invoice_html,
        name="invoice_html",
    ),
    path("<int:org_id>/invoices/<int:invoice_id>/pdf/", views.invoice_pdf, name="invoice_pdf"),
]
