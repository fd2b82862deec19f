"""The usage explorer, the overview page and the audit log: exact figures, read-only pages."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.audit.services import record_audit
from apps.catalog.models import Deployment, Model, ModelPrice, Provider
from apps.keys.services import create_api_key
from apps.ledger.services import UsageDebit, post_usage_debits
from apps.metering.models import Status, UsageRecord
from apps.tenants.services import create_organization
from tests.admin.usage_rows import store, usage_row

pytestmark = pytest.mark.django_db

X = "\N{MULTIPLICATION SIGN}"


def cell(html: str, css_class: str, row_id: str | None = None) -> str:
    """The text of the first <td class="css_class"> (inside <tr id="row_id"> if given)."""
    if row_id is not None:
        html = html[html.index(f'id="{row_id}"') :]
    match = re.search(rf'<td class="{css_class}">([^<]*)</td>', html)
    assert match is not None, css_class
    return match.group(1)


def test_usage_totals_cover_exactly_the_filtered_rows(acme, sam, login):
    other = create_organization("Globex", owner_email="hank@globex.example")
    other_key, _ = create_api_key(other)
    now = timezone.now()
    store(
        [
            usage_row(acme.key, now, prompt_tokens=1000, completion_tokens=200),
            usage_row(acme.key, now, prompt_tokens=3, completion_tokens=7, cost="0.0000000031"),
            usage_row(other_key, now, prompt_tokens=5000, completion_tokens=5000),
        ]
    )
    url = reverse("admin:metering_usagerecord_changelist")

    html = login(sam).get(url + f"?org={acme.organization.pk}").content.decode()

    assert cell(html, "total-requests") == "2"
    assert cell(html, "total-prompt") == "1003"
    assert cell(html, "total-completion") == "207"
    assert cell(html, "total-cost") == "0.0001800031"  # 0.00018 + 0.0000000031


def test_usage_filters_by_key_prefix_model_and_status(acme, sam, login):
    second_key, _ = create_api_key(acme.organization, name="acme-batch")
    now = timezone.now()
    store(
        [
            usage_row(acme.key, now, model="default"),
            usage_row(second_key, now, model="default", status=Status.FAILED),
            usage_row(second_key, now, model="small"),
        ]
    )
    Model.objects.create(name="default")
    Model.objects.create(name="small")
    url = reverse("admin:metering_usagerecord_changelist")
    client = login(sam)

    by_key = client.get(url + f"?key={second_key.prefix}").content.decode()
    by_model = client.get(url + "?model=small").content.decode()
    by_status = client.get(url + "?status__exact=failed").content.decode()

    assert [cell(page, "total-requests") for page in (by_key, by_model, by_status)] == [
        "2",
        "1",
        "1",
    ]


def test_a_usage_record_explains_its_cost(acme, sam, login):
    provider = Provider.objects.create(name="hosted", base_url="https://llm.example.com/v1")
    model = Model.objects.create(
        name="default", input_price_per_mtok=Decimal("0.15"), output_price_per_mtok=Decimal("0.6")
    )
    deployment = Deployment.objects.create(model=model, provider=provider, upstream_model="up-1")
    ModelPrice.objects.create(
        model=model,
        input_price_per_mtok=Decimal("0.15"),
        output_price_per_mtok=Decimal("0.6"),
        changed_label="ops@tollgate.example",
        effective_from=timezone.now() - timedelta(days=1),
    )
    (record,) = store(
        [
            usage_row(
                acme.key,
                timezone.now(),
                prompt_tokens=333,
                completion_tokens=77,
                input_price="0.15",
                output_price="0.6",
                cost="0.0000961500",
                deployment_id=deployment.pk,
                latency_ms=1234,
                ttft_ms=56,
            )
        ]
    )
    post_entries([record])
    url = reverse("admin:metering_usagerecord_change", args=[record.pk])

    html = login(sam).get(url).content.decode()

    assert f"333 tokens {X} 0.1500000000 USD per million = 0.0000499500 USD" in html
    assert f"77 tokens {X} 0.6000000000 USD per million = 0.0000462000 USD" in html
    assert f"(333 {X} 0.1500000000 + 77 {X} 0.6000000000) / 1,000,000 = 0.0000961500 USD" in html
    assert '<td id="charged">0.0000961500 USD' in html
    assert "hosted:up-1" in html
    assert "latency 1234 ms, first token after 56 ms" in html
    assert "by ops@tollgate.example" in html  # the price history row in force
    assert "-0.0000961500 USD" in html  # its ledger debit
    assert "capped" not in html


def test_the_explanation_shows_the_rounding_and_a_cap_by_the_hold(acme, sam, login):
    (record,) = store(
        [
            usage_row(
                acme.key,
                timezone.now(),
                prompt_tokens=1,
                completion_tokens=3,
                input_price="0.00015",
                output_price="0.0001",
                cost="0.0000000002",
            )
        ]
    )
    url = reverse("admin:metering_usagerecord_change", args=[record.pk])

    html = login(sam).get(url).content.decode()

    assert "/ 1,000,000 = 0.00000000045 USD" in html
    assert "<td>0.0000000005 USD</td>" in html  # rounded half up
    assert '<td id="charged">0.0000000002 USD' in html
    assert "capped at the credit the gateway reserved" in html
    assert "No price history row before that moment." in html
    assert "missing — see the reconciliation report" in html


def post_entries(records: list[UsageRecord]) -> None:
    from django.db import transaction

    with transaction.atomic():
        post_usage_debits(
            UsageDebit(r.organization_id, r.request_id, r.cost, r.model) for r in records
        )


def test_usage_records_are_read_only_even_for_superusers(acme, root, login):
    (record,) = store([usage_row(acme.key, timezone.now())])
    client = login(root)

    change = client.post(reverse("admin:metering_usagerecord_change", args=[record.pk]), {})
    delete = client.post(
        reverse("admin:metering_usagerecord_delete", args=[record.pk]), {"post": "yes"}
    )

    assert (change.status_code, delete.status_code) == (403, 403)
    assert UsageRecord.objects.count() == 1


def test_the_overview_matches_the_seeded_usage_exactly(acme, sam, login):
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=1, microsecond=0)
    other = create_organization("Globex", owner_email="hank@globex.example")
    other_key, _ = create_api_key(other)
    store(
        [
            # today
            usage_row(acme.key, midnight, prompt_tokens=100, completion_tokens=10, cost="0.000014"),
            usage_row(
                acme.key,
                midnight,
                prompt_tokens=1,
                completion_tokens=1,
                cost="0.0000000005",
                status=Status.FAILED,
                model="small",
                deployment_id=8,
            ),
            # 3 days ago
            usage_row(other_key, now - timedelta(days=3), 2000, 500, cost="0.0004"),
            # 20 days ago
            usage_row(acme.key, now - timedelta(days=20), 7, 3, cost="1.2345678901"),
            # 40 days ago: outside every window
            usage_row(acme.key, now - timedelta(days=40), 9, 9, cost="5"),
        ]
    )

    html = login(sam).get(reverse("admin:metering_overview")).content.decode()

    columns = ("requests", "tokens", "revenue", "errors", "error-rate")
    figures = {
        window: [cell(html, name, f"window-{window}") for name in columns]
        for window in ("today", "7d", "30d")
    }
    assert figures == {
        "today": ["2", "112", "0.0000140005", "1", "50.00%"],
        "7d": ["3", "2612", "0.0004140005", "1", "33.33%"],
        "30d": ["4", "2622", "1.2349818906", "1", "25.00%"],
    }
    models = html[html.index('id="models"') : html.index('id="organizations"')]
    assert models.index(">default<") < models.index(">small<")
    assert "1.2349818901" in models  # default: 0.000014 + 0.0004 + 1.2345678901
    organizations = html[html.index('id="organizations"') : html.index('id="deployments"')]
    assert organizations.index("Acme") < organizations.index("Globex")
    assert "1.2345818906" in organizations  # Acme's 30 days


def test_the_overview_needs_its_permission(nick, login):
    response = login(nick).get(reverse("admin:metering_overview"))

    assert response.status_code == 302  # not staff: to the login page


def test_the_audit_log_is_searchable_and_read_only(acme, sam, root, login):
    record_audit(actor=sam, action="tenants.suspend", target=acme.organization, reason="fraud")
    record_audit(actor=root, action="keys.revoke", target=acme.key)
    client = login(root)
    url = reverse("admin:audit_auditentry_changelist")

    found = client.get(url + "?q=fraud").content.decode()
    by_area = client.get(url + "?area=keys").content.decode()
    entry = AuditEntry.objects.get(action="keys.revoke")
    change = client.post(reverse("admin:audit_auditentry_change", args=[entry.pk]), {})
    delete = client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"})

    assert ("tenants.suspend" in found, "keys.revoke" in found) == (True, False)
    assert ("tenants.suspend" in by_area, "keys.revoke" in by_area) == (False, True)
    assert (change.status_code, delete.status_code) == (403, 403)
    assert AuditEntry.objects.count() == 2
