"""Money in the admin: only finance (or a superuser) moves it, and every move leaves a ledger
entry and an audit entry naming the staff user."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.billing.models import Invoice, PeriodClose
from apps.ledger.models import EntryKind, LedgerEntry, ReconciliationIssue
from apps.ledger.selectors import ledger_balance
from apps.tenants.models import BillingMode, Organization
from tests.admin.usage_rows import store, usage_row

pytestmark = pytest.mark.django_db


def credits_url(acme) -> str:
    return reverse("admin:tenants_organization_credits", args=[acme.organization.pk])


def grant_form(amount: str, reason: str = "goodwill for ticket 42", key: str = "k-1") -> dict:
    return {"amount": amount, "reason": reason, "idempotency_key": key}


def test_staff_without_finance_cannot_grant_credits(acme, sam, login):
    client = login(sam)

    shown = client.get(credits_url(acme))
    posted = client.post(credits_url(acme), grant_form("50"))

    assert (shown.status_code, posted.status_code) == (403, 403)
    assert LedgerEntry.objects.filter(organization=acme.organization).count() == 1  # welcome
    assert AuditEntry.objects.count() == 0
    assert ledger_balance(acme.organization) == Decimal("100.0000000000")


def test_a_non_staff_user_is_sent_to_the_login_page(acme, nick, login):
    response = login(nick).post(credits_url(acme), grant_form("50"))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert LedgerEntry.objects.filter(organization=acme.organization).count() == 1


def test_the_credits_form_shows_the_balance_and_the_floor(acme, fiona, login):
    html = login(fiona).get(credits_url(acme)).content.decode()

    assert "Balance 100.0000000000 USD; a deduction may not take it below 0.0000000000 USD." in html


def test_finance_grants_credits_with_a_ledger_entry_and_an_audit_entry(acme, fiona, login):
    response = login(fiona).post(credits_url(acme), grant_form("12.3456789012"))

    assert response.status_code == 302
    entry = LedgerEntry.objects.get(idempotency_key="k-1")
    assert (entry.kind, entry.amount, entry.actor, entry.actor_label, entry.memo) == (
        EntryKind.GRANT,
        Decimal("12.3456789012"),
        fiona,
        "fiona@tollgate.example",
        "goodwill for ticket 42",
    )
    audit = AuditEntry.objects.get()
    assert (audit.actor, audit.actor_label, audit.action, audit.reason) == (
        fiona,
        "fiona@tollgate.example",
        "ledger.grant_credits",
        "goodwill for ticket 42",
    )
    assert (audit.target_type, audit.target_id) == (
        "tenants.organization",
        str(acme.organization.pk),
    )
    assert audit.before == {"balance": "100.0000000000"}
    assert audit.after == {
        "balance": "112.3456789012",
        "amount": "12.3456789012",
        "kind": "grant",
        "ledger_entry": entry.pk,
    }


def test_a_superuser_deducts_credits_as_an_adjustment(acme, root, login):
    login(root).post(credits_url(acme), grant_form("-30", reason="chargeback 7"))

    entry = LedgerEntry.objects.get(idempotency_key="k-1")
    assert (entry.kind, entry.amount, entry.actor) == (EntryKind.ADJUSTMENT, Decimal(-30), root)
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.before, audit.after["balance"]) == (
        "ledger.deduct_credits",
        root,
        {"balance": "100.0000000000"},
        "70.0000000000",
    )


def test_the_same_form_posted_twice_grants_once(acme, fiona, login):
    client = login(fiona)

    client.post(credits_url(acme), grant_form("5"))
    again = client.post(credits_url(acme), grant_form("5"))

    assert again.status_code == 302
    assert LedgerEntry.objects.filter(idempotency_key="k-1").count() == 1
    assert AuditEntry.objects.count() == 1
    assert ledger_balance(acme.organization) == Decimal("105.0000000000")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (grant_form("5", reason=""), "This field is required."),
        (grant_form("0"), "The amount must not be zero."),
        (grant_form("0.00000000001"), "Ensure that there are no more than 10 decimal places."),
        (grant_form("-100.0000000001"), "would go below its floor of 0.0000000000 USD"),
    ],
)
def test_a_refused_grant_writes_nothing(acme, fiona, login, form, error):
    response = login(fiona).post(credits_url(acme), form)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert LedgerEntry.objects.filter(organization=acme.organization).count() == 1
    assert AuditEntry.objects.count() == 0


def test_finance_sets_the_credit_limit_and_the_gateway_is_told(
    acme, fiona, login, django_capture_on_commit_callbacks
):
    url = reverse("admin:tenants_organization_credit_limit", args=[acme.organization.pk])
    form = {"billing_mode": "postpaid", "credit_limit": "250.5", "reason": "signed contract"}

    with django_capture_on_commit_callbacks() as callbacks:
        response = login(fiona).post(url, form)

    assert response.status_code == 302
    acme.organization.refresh_from_db()
    assert (acme.organization.billing_mode, acme.organization.credit_limit) == (
        BillingMode.POSTPAID,
        Decimal("250.5"),
    )
    assert len(callbacks) == 1  # the tenant epoch bump
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.reason) == (
        "tenants.set_credit_limit",
        fiona,
        "signed contract",
    )
    assert audit.before == {"credit_limit": "0.0000000000", "billing_mode": "prepaid"}
    assert audit.after == {"credit_limit": "250.5000000000", "billing_mode": "postpaid"}


def test_support_cannot_change_the_credit_limit(acme, sam, login):
    url = reverse("admin:tenants_organization_credit_limit", args=[acme.organization.pk])

    response = login(sam).post(
        url, {"billing_mode": "postpaid", "credit_limit": "9", "reason": "x"}
    )

    assert response.status_code == 403
    acme.organization.refresh_from_db()
    assert (acme.organization.billing_mode, acme.organization.credit_limit) == ("prepaid", 0)
    assert AuditEntry.objects.count() == 0


def test_finance_runs_the_reconciliation_and_support_may_not(acme, fiona, sam, login):
    url = reverse("admin:ledger_reconciliationissue_run")

    refused = login(sam).post(url)
    ran = login(fiona).post(url)

    assert (refused.status_code, ran.status_code) == (403, 302)
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.after) == (
        "ledger.run_reconciliation",
        fiona,
        {"mismatches": 0},
    )


def test_the_reconciliation_report_lists_every_issue(acme, fiona, login):
    ReconciliationIssue.objects.create(
        organization=acme.organization,
        kind="cached_balance",
        expected=Decimal("100"),
        actual=Decimal("99.5"),
    )
    ReconciliationIssue.objects.create(
        organization=acme.organization,
        kind="usage_cost",
        expected=Decimal("1.25"),
        actual=Decimal("1.5"),
        resolved=True,
    )

    page = login(fiona).get(reverse("admin:ledger_reconciliationissue_changelist"))

    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("Acme") == 2
    assert "-0.5000000000" in html
    assert "0.2500000000" in html
    assert "Run reconciliation now" in html


def test_resolving_an_issue_is_audited(acme, fiona, login):
    issue = ReconciliationIssue.objects.create(
        organization=acme.organization, kind="usage_count", expected=3, actual=2
    )
    url = reverse("admin:ledger_reconciliationissue_changelist")

    login(fiona).post(url, {"action": "resolve_selected", "_selected_action": [issue.pk]})

    issue.refresh_from_db()
    assert issue.resolved is True
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.before, audit.after) == (
        "ledger.resolve_issue",
        fiona,
        {"resolved": False},
        {"resolved": True},
    )


def test_ledger_entries_cannot_be_added_changed_or_deleted(acme, root, login):
    entry = LedgerEntry.objects.get(organization=acme.organization)
    client = login(root)

    add = client.get(reverse("admin:ledger_ledgerentry_add"))
    change = client.post(reverse("admin:ledger_ledgerentry_change", args=[entry.pk]), {})
    delete = client.post(
        reverse("admin:ledger_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
    )

    assert (add.status_code, delete.status_code) == (403, 403)
    assert change.status_code == 403
    entry.refresh_from_db()
    assert entry.amount == Decimal(100)


OPERATOR_PERMISSIONS = (
    "audit.grant_credits",
    "audit.refund_payment",
    "audit.rerun_billing_close",
    "audit.run_reconciliation",
    "audit.change_credit_limit",
    "audit.change_organization_plan",
    "audit.suspend_organization",
    "audit.revoke_api_key",
    "audit.view_overview",
    "catalog.change_provider",
    "catalog.change_model",
    "limits.change_plan",
    "billing.view_invoice",
    "billing.view_stripeevent",
)


def test_each_group_holds_exactly_its_operator_permissions(root, fiona, sam, nick):
    held = {
        user.email: [p for p in OPERATOR_PERMISSIONS if user.has_perm(p)]
        for user in (root, fiona, sam, nick)
    }

    assert held == {
        "root@tollgate.example": list(OPERATOR_PERMISSIONS),
        "fiona@tollgate.example": [
            "audit.grant_credits",
            "audit.refund_payment",
            "audit.rerun_billing_close",
            "audit.run_reconciliation",
            "audit.change_credit_limit",
            "audit.change_organization_plan",
            "audit.view_overview",
            "catalog.change_model",
            "billing.view_invoice",
            "billing.view_stripeevent",
        ],
        "sam@tollgate.example": [
            "audit.change_organization_plan",
            "audit.suspend_organization",
            "audit.revoke_api_key",
            "audit.view_overview",
            "billing.view_invoice",
        ],
        "nick@example.com": [],
    }


def test_finance_reads_every_money_page_and_support_the_tenant_ones(acme, fiona, sam, login):
    pages = [
        "admin:ledger_ledgerentry_changelist",
        "admin:ledger_reconciliationissue_changelist",
        "admin:billing_invoice_changelist",
        "admin:billing_stripeevent_changelist",
        "admin:metering_usagerecord_changelist",
        "admin:tenants_organization_changelist",
        "admin:audit_auditentry_changelist",
    ]
    finance, support = login(fiona), login(sam)

    statuses = [
        (finance.get(reverse(p)).status_code, support.get(reverse(p)).status_code) for p in pages
    ]

    assert statuses == [
        (200, 200),
        (200, 200),
        (200, 200),
        (200, 403),
        (200, 200),
        (200, 200),
        (200, 200),
    ]


def test_ledger_search_finds_an_exact_key_a_staff_email_or_an_organization(acme, fiona, login):
    login(fiona).post(credits_url(acme), grant_form("5"))
    url = reverse("admin:ledger_ledgerentry_changelist")
    client = login(fiona)

    by_key = client.get(url + "?q=acme-welcome").content.decode()
    by_staff = client.get(url + "?q=Fiona@tollgate.example").content.decode()
    by_org = client.get(url + "?q=Acme").content.decode()

    assert ("acme-welcome" in by_key, "k-1" in by_key) == (True, False)
    assert ("acme-welcome" in by_staff, "k-1" in by_staff) == (False, True)
    assert ("acme-welcome" in by_org, "k-1" in by_org) == (True, True)


def test_the_admin_index_links_the_operator_pages(sam, login):
    html = login(sam).get(reverse("admin:index")).content.decode()

    assert reverse("admin:metering_overview") in html
    assert reverse("admin:ledger_reconciliationissue_changelist") in html


def test_finance_closes_the_due_billing_periods_once(acme, fiona, sam, login, settings):
    settings.BILLING_CLOSE_GRACE_S = 0
    settings.BILLING_PERIOD = "daily"
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    Organization.objects.filter(pk=acme.organization.pk).update(
        created_at=today - timedelta(days=2)
    )
    store([usage_row(acme.key, today - timedelta(hours=12), cost="0.25")])
    url = reverse("admin:tenants_organization_billing_close", args=[acme.organization.pk])

    refused = login(sam).post(url, {"reason": "beat was down"})
    first = login(fiona).post(url, {"reason": "beat was down"})
    again = login(fiona).post(url, {"reason": "checking"})

    assert (refused.status_code, first.status_code, again.status_code) == (403, 302, 302)
    closes = list(
        PeriodClose.objects.filter(organization=acme.organization)
        .order_by("period_start")
        .values_list("period_start", "invoice__total")
    )
    assert closes == [
        (today - timedelta(days=2), None),
        (today - timedelta(days=1), Decimal("0.2500000000")),
    ]
    audits = list(AuditEntry.objects.order_by("pk").values_list("action", "actor_label", "after"))
    invoice = Invoice.objects.get(organization=acme.organization)
    assert audits == [
        (
            "billing.rerun_close",
            "fiona@tollgate.example",
            {
                "closed": [
                    {
                        "period_start": (today - timedelta(days=2)).isoformat(),
                        "period_end": (today - timedelta(days=1)).isoformat(),
                        "invoice": None,
                    },
                    {
                        "period_start": (today - timedelta(days=1)).isoformat(),
                        "period_end": today.isoformat(),
                        "invoice": invoice.number,
                    },
                ]
            },
        ),
        ("billing.rerun_close", "fiona@tollgate.example", {"closed": []}),
    ]
