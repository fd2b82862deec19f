"""Closing billing periods into invoices: exact totals, numbering, immutability, Stripe for
post-paid organizations, reconciliation, documents and credit notes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.billing import invoicing, tasks
from apps.billing.amounts import allocate_cents, round_to_cents
from apps.billing.documents import render_invoice_html, render_invoice_pdf
from apps.billing.errors import BillingRefused
from apps.billing.invoicing import close_due_periods, close_period, issue_credit_note
from apps.billing.models import (
    DocumentSeries,
    Invoice,
    InvoiceDiscrepancy,
    InvoiceKind,
    InvoiceLine,
    PeriodClose,
    StripeInvoiceStatus,
)
from apps.billing.periods import period_containing
from apps.billing.reconciliation import reconcile_closed_periods
from apps.billing.stripe_gateway import StripeUnavailable
from apps.billing.stripe_invoices import push_invoice
from apps.ledger.models import EntryKind, LedgerEntry
from apps.ledger.services import grant_credits, post_entry
from apps.metering.models import UsageRecord
from apps.tenants.models import BillingMode, Organization
from tests.billing.helpers import deliver_all, in_threads, run_on_commit
from tests.billing.usage_rows import expected_lines, ingest, usage_rows

SEPTEMBER = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
MONTH = timedelta(days=30)


def postpaid(organization) -> None:
    organization.billing_mode = BillingMode.POSTPAID
    organization.credit_limit = Decimal(1000)
    organization.save(update_fields=["billing_mode", "credit_limit"])


def close(organization, period=SEPTEMBER):
    with run_on_commit():
        return close_period(organization, *period)


# --- totals -----------------------------------------------------------------------------------


def test_closing_thousands_of_usage_rows_gives_exact_lines_and_totals(people):
    rows = usage_rows(people.acme, 6000, SEPTEMBER[0], MONTH)
    ingest(rows)
    ingest(usage_rows(people.acme, 40, SEPTEMBER[1], MONTH, tag="october"))
    ingest(usage_rows(people.acme, 40, SEPTEMBER[0] - MONTH, MONTH, tag="august"))
    ingest(usage_rows(people.globex, 40, SEPTEMBER[0], MONTH, tag="globex"))

    period_close, created = close(people.acme)

    assert created
    invoice = period_close.invoice
    expected = expected_lines(rows)
    lines = list(invoice.lines.order_by("position"))
    assert [
        (line.model, line.input_price_per_mtok, line.output_price_per_mtok) for line in lines
    ] == (sorted(expected))
    for line in lines:
        want = expected[(line.model, line.input_price_per_mtok, line.output_price_per_mtok)]
        assert (line.requests, line.input_tokens, line.output_tokens, line.amount) == (
            want.requests,
            want.input_tokens,
            want.output_tokens,
            want.amount,
        )
    exact_total = sum(row.cost for row in rows)
    assert invoice.total == exact_total
    assert invoice.total_cents == round_to_cents(exact_total)
    assert sum(line.amount_cents for line in lines) == invoice.total_cents
    assert invoice.request_count == 6000
    assert (invoice.number, invoice.kind, invoice.customer_name) == (
        "TG-000001",
        InvoiceKind.STATEMENT,
        "Acme",
    )
    assert (invoice.period_start, invoice.period_end) == SEPTEMBER
    assert invoice.stripe_status == StripeInvoiceStatus.NOT_NEEDED


def test_closing_again_changes_nothing(people):
    ingest(usage_rows(people.acme, 300, SEPTEMBER[0], MONTH))
    first, _ = close(people.acme)

    again, created = close(people.acme)

    assert not created
    assert again.pk == first.pk
    assert Invoice.objects.count() == 1
    assert InvoiceLine.objects.count() == 4  # gpt-small, gpt-large at two prices, free-tier
    assert DocumentSeries.objects.get().last_value == 1


def test_reconciliation_is_empty_then_reports_a_broken_usage_row(people):
    ingest(usage_rows(people.acme, 3000, SEPTEMBER[0], MONTH))
    period_close, _ = close(people.acme)
    assert reconcile_closed_periods() == []

    broken = UsageRecord.objects.filter(organization=people.acme, cost__gt=0).order_by("pk")[0]
    UsageRecord.objects.filter(pk=broken.pk).update(cost=broken.cost + Decimal("0.0000000001"))
    (mismatch,) = reconcile_closed_periods()

    total = period_close.invoice.total
    assert (mismatch.check, mismatch.invoice_number, mismatch.expected, mismatch.actual) == (
        "usage_rows",
        "TG-000001",
        total,
        total + Decimal("0.0000000001"),
    )
    reconcile_closed_periods()
    discrepancy = InvoiceDiscrepancy.objects.get()
    assert (discrepancy.check_name, discrepancy.times_seen, discrepancy.resolved) == (
        "usage_rows",
        2,
        False,
    )
    out = StringIO()
    call_command("reconcile_invoices", stdout=out)
    assert out.getvalue().splitlines()[-1] == "1"


def test_a_usage_row_without_its_ledger_debit_shows_up_in_the_report(people):
    rows = usage_rows(people.acme, 500, SEPTEMBER[0], MONTH)
    ingest(rows[:-4])
    UsageRecord.objects.bulk_create(rows[-4:])  # stored, never debited
    missing = sum(row.cost for row in rows[-4:])
    assert missing > 0

    period_close, _ = close(people.acme)

    (mismatch,) = reconcile_closed_periods()
    assert (mismatch.check, mismatch.expected, mismatch.actual) == (
        "ledger",
        period_close.invoice.total,
        period_close.invoice.total - missing,
    )


def test_usage_arriving_after_a_close_without_invoice_is_reported(people):
    postpaid(people.globex)
    period_close, _ = close(people.globex)
    assert period_close.invoice is None
    ingest(usage_rows(people.globex, 8, SEPTEMBER[0], MONTH))

    checks = sorted(mismatch.check for mismatch in reconcile_closed_periods())

    assert checks == ["ledger", "usage_rows"]


# --- numbers and immutability -----------------------------------------------------------------


def test_numbers_are_sequential_across_organizations(people):
    ingest(usage_rows(people.acme, 10, SEPTEMBER[0], MONTH))
    ingest(usage_rows(people.globex, 10, SEPTEMBER[0], MONTH))
    october = (SEPTEMBER[1], datetime(2026, 11, 1, tzinfo=UTC))
    ingest(usage_rows(people.acme, 10, october[0], MONTH, tag="oct"))

    numbers = [
        close(people.acme)[0].invoice.number,
        close(people.globex)[0].invoice.number,
        close(people.acme, october)[0].invoice.number,
    ]

    assert numbers == ["TG-000001", "TG-000002", "TG-000003"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_closes_take_distinct_numbers_without_gaps(people):
    organizations = [people.acme, people.globex]
    for organization in organizations:
        ingest(usage_rows(organization, 20, SEPTEMBER[0], MONTH))

    in_threads(4, lambda i: close_period(organizations[i % 2], *SEPTEMBER))

    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == ["TG-000001", "TG-000002"]
    assert PeriodClose.objects.count() == 2


def test_an_issued_invoice_cannot_be_changed_or_deleted(people):
    ingest(usage_rows(people.acme, 10, SEPTEMBER[0], MONTH))
    invoice = close(people.acme)[0].invoice
    line = invoice.lines.first()

    for change in (
        lambda: Invoice.objects.filter(pk=invoice.pk).update(total=Decimal(1)),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(number="TG-999999"),
        lambda: InvoiceLine.objects.filter(pk=line.pk).update(amount=Decimal(1)),
        lambda: InvoiceLine.objects.filter(pk=line.pk).delete(),
    ):
        with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
            change()

    Invoice.objects.filter(pk=invoice.pk).update(paid_at=timezone.now())  # status may move
    invoice.refresh_from_db()
    assert invoice.paid_at is not None


# --- prepaid statements -----------------------------------------------------------------------


def test_a_prepaid_statement_shows_usage_paid_from_credits_and_the_top_ups(people):
    current = period_containing(timezone.now())
    post_entry(
        people.acme,
        amount=Decimal("40"),
        kind=EntryKind.TOPUP,
        idempotency_key="stripe:checkout:cs_test_statement",
        memo="Stripe Checkout cs_test_statement",
        actor_label="system:stripe",
    )
    grant_credits(people.acme, Decimal("5"), reason="goodwill")  # a grant is not a top-up
    ingest(usage_rows(people.acme, 30, current[0], timedelta(hours=1)))

    invoice = close(people.acme, current)[0].invoice

    assert invoice.kind == InvoiceKind.STATEMENT
    assert invoice.topups_total == Decimal("40")
    html = render_invoice_html(invoice)
    assert "Statement TG-000001" in html
    assert "Paid from prepaid credits" in html
    assert "Stripe Checkout cs_test_statement" in html


def test_a_prepaid_period_without_usage_or_top_ups_gives_no_statement(people):
    period_close, created = close(people.acme)

    assert created
    assert period_close.invoice is None
    assert not DocumentSeries.objects.exists()


# --- post-paid invoices in Stripe -------------------------------------------------------------


def test_a_postpaid_close_creates_finalizes_and_sends_one_stripe_invoice(people, fake_stripe):
    postpaid(people.globex)
    ingest(usage_rows(people.globex, 400, SEPTEMBER[0], MONTH))

    invoice = close(people.globex)[0].invoice

    invoice.refresh_from_db()
    (stripe_invoice,) = fake_stripe.invoices.values()
    assert invoice.stripe_invoice_id == stripe_invoice["id"]
    assert invoice.stripe_status == StripeInvoiceStatus.SENT
    assert fake_stripe.sent_invoices == [stripe_invoice["id"]]
    assert stripe_invoice["status"] == "open"
    assert stripe_invoice["collection_method"] == "send_invoice"
    assert stripe_invoice["metadata"] == {
        "tollgate_invoice_number": invoice.number,
        "tollgate_org_id": str(people.globex.pk),
    }
    lines = list(invoice.lines.order_by("position"))
    assert [line["amount"] for line in stripe_invoice["lines"]["data"]] == [
        line.amount_cents for line in lines
    ]
    assert stripe_invoice["amount_due"] == invoice.total_cents
    keys = [request.idempotency_key for request in fake_stripe.requests]
    number = invoice.number
    assert keys == [
        f"tollgate-customer-{people.globex.pk}",
        f"tollgate-invoice-{number}-create",
        *[f"tollgate-invoice-{number}-line-{line.position}" for line in lines],
        f"tollgate-invoice-{number}-finalize",
        f"tollgate-invoice-{number}-send",
    ]


def test_rerunning_a_postpaid_close_and_its_push_creates_nothing_new(people, fake_stripe):
    postpaid(people.globex)
    ingest(usage_rows(people.globex, 100, SEPTEMBER[0], MONTH))
    invoice = close(people.globex)[0].invoice
    sent = len(fake_stripe.requests)

    close(people.globex)
    push_invoice(invoice.pk)
    assert len(fake_stripe.requests) == sent  # done: nothing is even asked

    # A crash lost our records of every step: the push repeats them with the same keys.
    Invoice.objects.filter(pk=invoice.pk).update(
        stripe_status=StripeInvoiceStatus.PENDING, stripe_invoice_id="", stripe_lines_pushed=0
    )
    push_invoice(invoice.pk)

    assert len(fake_stripe.invoices) == 1
    assert len(fake_stripe.invoice_items) == invoice.lines.count()
    assert fake_stripe.sent_invoices == [next(iter(fake_stripe.invoices))]
    replays = fake_stripe.requests[sent:]
    assert replays
    assert all(request.replayed for request in replays)
    invoice.refresh_from_db()
    assert invoice.stripe_status == StripeInvoiceStatus.SENT


def test_a_postpaid_period_without_usage_makes_no_stripe_invoice(people, fake_stripe):
    postpaid(people.globex)

    period_close, created = close(people.globex)

    assert created
    assert period_close.invoice is None
    assert fake_stripe.requests == []


def test_invoice_paid_settles_the_ledger_once(people, fake_stripe):
    postpaid(people.globex)
    ingest(usage_rows(people.globex, 100, SEPTEMBER[0], MONTH))
    invoice = close(people.globex)[0].invoice
    invoice.refresh_from_db()
    paid = fake_stripe.pay_invoice(invoice.stripe_invoice_id)

    assert deliver_all([paid, paid]) == [200, 200]

    (entry,) = LedgerEntry.objects.filter(kind=EntryKind.INVOICE_SETTLEMENT)
    assert entry.amount == Decimal(invoice.total_cents) / 100
    assert entry.idempotency_key == f"stripe:invoice:{invoice.stripe_invoice_id}"
    invoice.refresh_from_db()
    assert invoice.stripe_status == StripeInvoiceStatus.PAID
    assert invoice.paid_at is not None


def test_a_push_during_a_stripe_outage_resumes_later(people, fake_stripe, monkeypatch):
    monkeypatch.setattr(invoicing, "_queue_push", lambda invoice_id: None)
    postpaid(people.globex)
    ingest(usage_rows(people.globex, 50, SEPTEMBER[0], MONTH))
    invoice = close(people.globex)[0].invoice
    fake_stripe.outages["/v1/invoiceitems"] = 2  # the first line fails, and the SDK's retry

    with pytest.raises(StripeUnavailable):
        push_invoice(invoice.pk)

    invoice.refresh_from_db()
    assert invoice.stripe_status == StripeInvoiceStatus.DRAFT
    push_invoice(invoice.pk)
    invoice.refresh_from_db()
    assert invoice.stripe_status == StripeInvoiceStatus.SENT
    assert len(fake_stripe.invoices) == 1


# --- due periods ------------------------------------------------------------------------------


def test_due_periods_are_closed_after_the_grace_time(people, settings):
    settings.BILLING_CLOSE_GRACE_S = 3600
    from apps.tenants.models import Organization

    Organization.objects.filter(pk=people.acme.pk).update(
        created_at=datetime(2026, 8, 15, tzinfo=UTC)
    )
    Organization.objects.exclude(pk=people.acme.pk).update(
        created_at=datetime(2026, 9, 30, 23, tzinfo=UTC)
    )
    ingest(usage_rows(people.acme, 20, SEPTEMBER[0], MONTH))

    closed_early = close_due_periods(now=datetime(2026, 10, 1, 0, 30, tzinfo=UTC))
    closed = close_due_periods(now=datetime(2026, 10, 1, 1, 0, tzinfo=UTC))
    closed_again = close_due_periods(now=datetime(2026, 10, 1, 1, 0, tzinfo=UTC))

    assert (closed_early, closed, closed_again) == (1, 2, 0)  # August; then September of both
    starts = PeriodClose.objects.filter(organization=people.acme).values_list(
        "period_start", flat=True
    )
    assert sorted(starts) == [datetime(2026, 8, 1, tzinfo=UTC), SEPTEMBER[0]]


def test_weekly_and_daily_periods(settings):
    moment = datetime(2026, 9, 17, 15, 4, tzinfo=UTC)  # a Thursday
    assert period_containing(moment, "weekly") == (
        datetime(2026, 9, 14, tzinfo=UTC),
        datetime(2026, 9, 21, tzinfo=UTC),
    )
    assert period_containing(moment, "daily") == (
        datetime(2026, 9, 17, tzinfo=UTC),
        datetime(2026, 9, 18, tzinfo=UTC),
    )
    assert period_containing(datetime(2026, 12, 31, 23, tzinfo=UTC), "monthly") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


# --- cents ------------------------------------------------------------------------------------


def test_cents_are_allocated_so_lines_add_up_to_the_rounded_total():
    amounts = [Decimal("0.004"), Decimal("0.004"), Decimal("0.004"), Decimal("1.2349999999")]
    cents = allocate_cents(amounts)

    assert sum(cents) == round_to_cents(sum(amounts)) == 125
    assert cents == [1, 0, 0, 124]
    assert round_to_cents(Decimal("0.005")) == 1  # half-up
    assert round_to_cents(Decimal("0.0049999999")) == 0


# --- documents and credit notes ---------------------------------------------------------------


def test_invoices_render_as_html_and_pdf_with_the_operator_details(people, settings):
    settings.OPERATOR_COMPANY_NAME = "Tollgate Operators GmbH"
    settings.OPERATOR_COMPANY_ADDRESS = "Hauptstrasse 1\n10115 Berlin"
    settings.OPERATOR_COMPANY_TAX_ID = "DE123456789"
    postpaid(people.acme)
    ingest(usage_rows(people.acme, 40, SEPTEMBER[0], MONTH))
    invoice = close(people.acme)[0].invoice

    html = render_invoice_html(invoice)
    pdf = render_invoice_pdf(invoice)

    assert "Invoice TG-000001" in html
    assert "Tollgate Operators GmbH" in html
    assert "10115 Berlin" in html
    assert "Tax id: DE123456789" in html
    assert "gpt-large" in html
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 2000


def test_a_credit_note_corrects_an_invoice_through_the_ledger(people):
    ingest(usage_rows(people.acme, 40, SEPTEMBER[0], MONTH))
    invoice = close(people.acme)[0].invoice

    note = issue_credit_note(invoice, Decimal("0.01"), reason="latency incident")

    assert note.number == "TG-CN-000001"
    entry = LedgerEntry.objects.get(idempotency_key="credit-note:TG-CN-000001")
    assert (entry.kind, entry.amount) == (EntryKind.ADJUSTMENT, Decimal("0.01"))
    with pytest.raises(BillingRefused):
        issue_credit_note(invoice, invoice.total, reason="too much")
    assert "TG-CN-000001" in render_invoice_html(invoice)


def test_the_beat_tasks_close_push_and_reconcile(people, fake_stripe, monkeypatch, settings):
    settings.BILLING_CLOSE_GRACE_S = 0
    monkeypatch.setattr(invoicing, "_queue_push", lambda invoice_id: None)  # the push is lost
    monkeypatch.setattr(tasks, "UNPUSHED_INVOICE_AGE", timedelta(0))
    current = period_containing(timezone.now())
    previous = period_containing(current[0] - timedelta(microseconds=1))
    postpaid(people.globex)
    Organization.objects.update(created_at=previous[0])
    ingest(usage_rows(people.globex, 30, previous[0], timedelta(days=1)))

    with run_on_commit():
        assert tasks.close_periods() == 2  # the last period of both organizations
    assert fake_stripe.invoices == {}
    with run_on_commit():
        assert tasks.push_unfinished_invoices() == 1

    assert Invoice.objects.get().stripe_status == StripeInvoiceStatus.SENT
    assert tasks.reconcile_invoices() == 0


def test_the_commands_close_periods_and_issue_credit_notes(people):
    Organization.objects.update(created_at=SEPTEMBER[0])
    ingest(usage_rows(people.acme, 30, SEPTEMBER[0], MONTH))
    out = StringIO()

    call_command("close_billing_periods", stdout=out)
    call_command("issue_credit_note", "TG-000001", "0.005", reason="goodwill", stdout=out)

    lines = out.getvalue().splitlines()
    assert int(lines[0]) >= 2  # September of both organizations, and any later month
    assert lines[-1] == "TG-CN-000001"
