"""Invoices as documents: one HTML template, shown in the dashboard and printed to PDF by
WeasyPrint, with the operator's company details from settings."""

from pathlib import Path
from typing import Any

from django.template.loader import render_to_string

from apps.billing.conf import operator_company
from apps.billing.models import Invoice
from apps.billing.selectors import credit_notes_of
from apps.ledger.models import EntryKind, LedgerEntry

DOCUMENT_TEMPLATE = "billing/invoice_document.html"
STYLESHEET = Path(__file__).resolve().parent / "static" / "billing" / "invoice.css"


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    """Everything the document shows."""
    topups = []
    if invoice.is_statement:
        topups = list(
            LedgerEntry.objects.filter(
                organization_id=invoice.organization_id,
                kind=EntryKind.TOPUP,
                created_at__gte=invoice.period_start,
                created_at__lt=invoice.period_end,
            ).order_by("created_at", "pk")
        )
    return {
        "invoice": invoice,
        "lines": list(invoice.lines.order_by("position")),
        "credit_notes": list(credit_notes_of(invoice)),
        "topups": topups,
        "operator": operator_company(),
    }


def render_invoice_html(invoice: Invoice, *, for_pdf: bool = False) -> str:
    """The invoice as a standalone HTML document (its stylesheet is a static file, so the
    dashboard's Content-Security-Policy needs no inline style)."""
    return render_to_string(DOCUMENT_TEMPLATE, {**invoice_context(invoice), "for_pdf": for_pdf})


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as PDF (A4), printed from the same HTML and stylesheet."""
    # Imported here: WeasyPrint takes seconds to import, and only this function needs it.
    from weasyprint import CSS, HTML  # noqa: PLC0415

    html = HTML(string=render_invoice_html(invoice, for_pdf=True))
    return html.write_pdf(stylesheets=[CSS(filename=str(STYLESHEET))])


def pdf_filename(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"
