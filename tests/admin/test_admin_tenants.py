"""Organizations and keys in the admin: search, the tenant page, suspension, plans, revocation."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.billing.models import Invoice
from apps.hotstate.clients import sync_redis
from apps.hotstate.keyspace import key_not_valid_after, tenant_epoch
from apps.keys.models import APIKey
from apps.keys.services import create_api_key
from apps.limits.models import Plan
from apps.tenants.models import Membership, Organization
from apps.tenants.services import create_organization, suspend_organization
from tests.admin.usage_rows import store, usage_row

pytestmark = pytest.mark.django_db


def changelist(client, query: str = "") -> str:
    return client.get(reverse("admin:tenants_organization_changelist") + query).content.decode()


def test_organizations_are_found_by_name_member_email_and_key_prefix(acme, sam, login):
    create_organization("Globex", owner_email="hank@globex.example")
    client = login(sam)

    by_name = changelist(client, "?q=acm")
    by_email = changelist(client, "?q=hank@globex")
    by_prefix = changelist(client, f"?q={acme.key.prefix}")

    assert ("Acme" in by_name, "Globex" in by_name) == (True, False)
    assert ("Acme" in by_email, "Globex" in by_email) == (False, True)
    assert ("Acme" in by_prefix, "Globex" in by_prefix) == (True, False)


def test_the_organization_page_shows_money_keys_usage_and_members(acme, sam, login):
    store([usage_row(acme.key, timezone.now() - timedelta(hours=1), cost="0.0001800000")])
    url = reverse("admin:tenants_organization_change", args=[acme.organization.pk])

    html = login(sam).get(url).content.decode()

    assert '<td id="balance">100.0000000000 USD</td>' in html
    assert f"{acme.key.prefix}…" in html
    assert "acme-prod" in html
    assert "0.0001800000" in html
    assert "owner@acme.example" in html
    assert "welcome" in html  # the ledger memo
    assert "Grant or deduct credits" not in html  # support may not
    assert "Suspend" in html


def test_support_suspends_from_the_organization_page(
    acme, sam, login, django_capture_on_commit_callbacks
):
    url = reverse("admin:tenants_organization_suspend", args=[acme.organization.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = login(sam).post(url, {"reason": "fraud report 17"})

    assert response.status_code == 302
    acme.organization.refresh_from_db()
    assert acme.organization.suspended_at is not None
    assert sync_redis().get(tenant_epoch(acme.organization.pk)) == b"1"
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.reason, audit.before) == (
        "tenants.suspend",
        sam,
        "fraud report 17",
        {"suspended_at": None},
    )
    assert audit.after == {"suspended_at": acme.organization.suspended_at.isoformat()}


def test_suspension_needs_a_reason(acme, sam, login):
    url = reverse("admin:tenants_organization_suspend", args=[acme.organization.pk])

    response = login(sam).post(url, {"reason": ""})

    assert response.status_code == 200
    acme.organization.refresh_from_db()
    assert acme.organization.suspended_at is None
    assert AuditEntry.objects.count() == 0


def test_finance_may_not_suspend(acme, fiona, login):
    url = reverse("admin:tenants_organization_suspend", args=[acme.organization.pk])

    response = login(fiona).post(url, {"reason": "x"})

    assert response.status_code == 403
    acme.organization.refresh_from_db()
    assert acme.organization.suspended_at is None


def test_unsuspend_action_on_the_list(acme, sam, root, login):
    suspend_organization(acme.organization, actor=root, reason="test")
    url = reverse("admin:tenants_organization_changelist")

    login(sam).post(
        url, {"action": "unsuspend_selected", "_selected_action": [acme.organization.pk]}
    )

    acme.organization.refresh_from_db()
    assert acme.organization.suspended_at is None
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "actor_label"))
    assert actions == [
        ("tenants.suspend", "root@tollgate.example"),
        ("tenants.unsuspend", "sam@tollgate.example"),
    ]


def test_support_changes_the_plan(acme, sam, login, django_capture_on_commit_callbacks):
    plan = Plan.objects.create(name="team", rpm=60, tpm=10000, max_concurrent=4)
    url = reverse("admin:tenants_organization_plan", args=[acme.organization.pk])

    with django_capture_on_commit_callbacks(execute=True):
        login(sam).post(url, {"plan": plan.pk, "reason": "upgrade"})

    acme.organization.refresh_from_db()
    assert acme.organization.plan == plan
    assert sync_redis().get(tenant_epoch(acme.organization.pk)) == b"1"
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.before, audit.after) == (
        "tenants.change_plan",
        {"plan": None},
        {"plan": plan.pk, "plan_name": "team"},
    )


def test_an_organization_added_in_the_admin_gets_its_owner(root, login):
    url = reverse("admin:tenants_organization_add")
    form = {
        "name": "Initech",
        "plan": "",
        "owner_email": "Peter@Initech.example",
    }

    response = login(root).post(url, form)

    assert response.status_code == 302
    organization = Organization.objects.get(name="Initech")
    owner = Membership.objects.get(organization=organization)
    assert (owner.user.email, owner.role) == ("peter@initech.example", "owner")
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.target_id, audit.after["name"]) == (
        "tenants.organization.create",
        str(organization.pk),
        "Initech",
    )


def test_support_revokes_keys_and_every_worker_is_told(
    acme, sam, login, django_capture_on_commit_callbacks
):
    url = reverse("admin:keys_apikey_changelist")

    with django_capture_on_commit_callbacks(execute=True):
        login(sam).post(url, {"action": "revoke_selected", "_selected_action": [acme.key.pk]})

    acme.key.refresh_from_db()
    assert acme.key.revoked_at is not None
    marker = sync_redis().get(key_not_valid_after(acme.organization.pk, acme.key.pk))
    assert marker == repr(acme.key.revoked_at.timestamp()).encode()
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.target_type, audit.target_id) == (
        "keys.revoke",
        sam,
        "keys.apikey",
        str(acme.key.pk),
    )


def test_finance_is_not_offered_the_revoke_action(acme, fiona, login):
    url = reverse("admin:keys_apikey_changelist")
    client = login(fiona)

    html = client.get(url).content.decode()
    client.post(url, {"action": "revoke_selected", "_selected_action": [acme.key.pk]})

    assert "revoke_selected" not in html
    acme.key.refresh_from_db()
    assert acme.key.revoked_at is None
    assert AuditEntry.objects.count() == 0


def test_key_pages_never_show_the_whole_hash(acme, root, login):
    client = login(root)

    pages = [
        client.get(reverse("admin:keys_apikey_changelist")).content.decode(),
        client.get(reverse("admin:keys_apikey_change", args=[acme.key.pk])).content.decode(),
    ]

    assert [acme.key.hashed_secret in page for page in pages] == [False, False]
    assert f"{acme.key.hashed_secret[:8]}…" in pages[1]


def test_key_limits_changed_in_the_admin_reach_the_gateway(
    acme, root, login, django_capture_on_commit_callbacks
):
    url = reverse("admin:keys_apikey_change", args=[acme.key.pk])
    form = {"name": "acme-prod", "rpm": "30", "tpm": "", "max_concurrent": ""}

    with django_capture_on_commit_callbacks(execute=True):
        response = login(root).post(url, form)

    assert response.status_code == 302
    assert APIKey.objects.values_list("rpm", "tpm", "max_concurrent").get(pk=acme.key.pk) == (
        30,
        None,
        None,
    )
    assert sync_redis().get(tenant_epoch(acme.organization.pk)) == b"1"
    assert AuditEntry.objects.get().after == {"rpm": 30}


def test_keys_cannot_be_added_or_deleted_in_the_admin(acme, root, login):
    client = login(root)

    add = client.get(reverse("admin:keys_apikey_add"))
    delete = client.post(reverse("admin:keys_apikey_delete", args=[acme.key.pk]), {"post": "yes"})

    assert (add.status_code, delete.status_code) == (403, 403)
    assert APIKey.objects.filter(pk=acme.key.pk).exists()


def test_keys_list_filters_by_organization(acme, root, login):
    other = create_organization("Globex", owner_email="hank@globex.example")
    create_api_key(other, name="globex-key")
    url = reverse("admin:keys_apikey_changelist")

    html = login(root).get(url + f"?org={acme.organization.pk}").content.decode()

    assert ("acme-prod" in html, "globex-key" in html) == (True, False)


def test_the_balance_column_shows_the_cached_balance(acme, root, login):
    html = changelist(login(root))

    assert "100.0000000000" in html
    assert Decimal("100") == acme.organization.balance.amount


def test_renaming_an_organization_is_audited(acme, sam, login):
    url = reverse("admin:tenants_organization_change", args=[acme.organization.pk])
    membership = Membership.objects.get(organization=acme.organization)
    form = {
        "name": "Acme Corp",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": str(membership.pk),
        "memberships-0-organization": str(acme.organization.pk),
        "memberships-0-user": str(membership.user_id),
        "memberships-0-role": "owner",
        "invitations-TOTAL_FORMS": "0",
        "invitations-INITIAL_FORMS": "0",
    }

    response = login(sam).post(url, form)

    assert response.status_code == 302
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.before, audit.after) == (
        "tenants.organization.update",
        sam,
        {"name": "Acme"},
        {"name": "Acme Corp"},
    )


def test_the_organization_page_lists_its_invoices(acme, fiona, login):
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    Invoice.objects.create(
        number="TG-2026-0007",
        organization=acme.organization,
        kind="statement",
        customer_name="Acme",
        period_start=start - timedelta(days=31),
        period_end=start,
        issued_at=start,
        currency="usd",
        total=Decimal("12.5"),
        total_cents=1250,
        request_count=321,
        topups_total=Decimal(0),
        stripe_status="not_needed",
    )
    url = reverse("admin:tenants_organization_change", args=[acme.organization.pk])

    html = login(fiona).get(url).content.decode()

    assert "TG-2026-0007</a>" in html
    assert "<td>12.5000000000</td><td>321</td>" in html


def test_giving_a_staff_user_the_finance_group_is_audited(sam, root, login):
    url = reverse("admin:accounts_user_change", args=[sam.pk])
    form = {
        "email": "sam@tollgate.example",
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "is_staff": "on",
        "groups": [
            str(group.pk) for group in Group.objects.filter(name__in=["support", "finance"])
        ],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "09:00:00",
    }

    response = login(root).post(url, form)

    assert response.status_code == 302
    assert sorted(sam.groups.values_list("name", flat=True)) == ["finance", "support"]
    audit = AuditEntry.objects.get(action="accounts.user.change_access")
    assert (audit.actor, audit.target_id, audit.before, audit.after) == (
        root,
        str(sam.pk),
        {"groups": ["support"], "user_permissions": []},
        {"groups": ["finance", "support"], "user_permissions": []},
    )
