"""The catalog in the admin: write-only provider keys, price history, plans, actions, audit."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.catalog.catalog_file import parse_catalog
from apps.catalog.models import Deployment, Model, ModelPrice, Provider
from apps.catalog.services import sync_catalog
from apps.hotstate.clients import sync_redis
from apps.hotstate.keyspace import tenant_epoch
from apps.limits.models import Plan
from apps.tenants.services import create_organization

pytestmark = pytest.mark.django_db

SECRET = "sk-upstream-DO-NOT-SHOW-0123456789abcdef"


@pytest.fixture
def hosted(db: None) -> Provider:
    return Provider.objects.create(
        name="hosted", base_url="https://llm.example.com/v1", api_key=SECRET
    )


@pytest.fixture
def large(hosted: Provider) -> Model:
    model = Model.objects.create(
        name="large", input_price_per_mtok=Decimal("2.5"), output_price_per_mtok=Decimal("10")
    )
    Deployment.objects.create(model=model, provider=hosted, upstream_model="big-1")
    return model


def provider_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "hosted",
        "base_url": "https://llm.example.com/v1",
        "api_key": "",
        "api_key_env": "",
        "timeout_s": "60",
        "enabled": "on",
    }
    return {**form, **changes}


def model_form(model: Model, **changes: str) -> dict[str, str]:
    deployment = model.deployments.get()
    form = {
        "name": model.name,
        "input_price_per_mtok": str(model.input_price_per_mtok),
        "output_price_per_mtok": str(model.output_price_per_mtok),
        "context_window": str(model.context_window),
        "max_output_tokens": str(model.max_output_tokens),
        "enabled": "on",
        "deployments-TOTAL_FORMS": "1",
        "deployments-INITIAL_FORMS": "1",
        "deployments-0-id": str(deployment.pk),
        "deployments-0-model": str(model.pk),
        "deployments-0-provider": str(deployment.provider_id),
        "deployments-0-upstream_model": deployment.upstream_model,
        "deployments-0-weight": str(deployment.weight),
        "deployments-0-enabled": "on",
        "price_history-TOTAL_FORMS": "0",
        "price_history-INITIAL_FORMS": "0",
    }
    return {**form, **changes}


def test_the_provider_key_never_appears_in_any_admin_page(hosted, root, login):
    client = login(root)
    change_url = reverse("admin:catalog_provider_change", args=[hosted.pk])
    client.post(change_url, provider_form(timeout_s="30"))
    pages = [
        reverse("admin:catalog_provider_changelist"),
        change_url,
        reverse("admin:catalog_provider_history", args=[hosted.pk]),
        reverse("admin:audit_auditentry_changelist"),
        reverse("admin:audit_auditentry_change", args=[AuditEntry.objects.get().pk]),
    ]

    bodies = [client.get(url) for url in pages]

    assert [body.status_code for body in bodies] == [200] * 5
    assert not [
        url for url, body in zip(pages, bodies, strict=True) if SECRET in body.content.decode()
    ]
    assert "…cdef" in bodies[0].content.decode()  # the list shows it masked


def test_a_blank_key_keeps_the_stored_one_and_a_new_key_replaces_it(hosted, root, login):
    client = login(root)
    url = reverse("admin:catalog_provider_change", args=[hosted.pk])

    client.post(url, provider_form(timeout_s="30"))
    hosted.refresh_from_db()
    kept = (hosted.api_key, hosted.timeout_s)
    client.post(url, provider_form(api_key="sk-new-key-9876543210zyxw"))
    hosted.refresh_from_db()

    assert kept == (SECRET, 30)
    assert hosted.api_key == "sk-new-key-9876543210zyxw"
    updates = list(AuditEntry.objects.order_by("pk").values_list("before", "after"))
    assert updates == [
        ({"timeout_s": 60}, {"timeout_s": 30}),
        ({"api_key": "…cdef", "timeout_s": 30}, {"api_key": "…zyxw", "timeout_s": 60}),
    ]


def test_the_stored_key_can_be_removed(hosted, root, login):
    url = reverse("admin:catalog_provider_change", args=[hosted.pk])

    login(root).post(url, provider_form(clear_api_key="on", api_key_env="HOSTED_KEY"))

    hosted.refresh_from_db()
    assert (hosted.api_key, hosted.api_key_env) == ("", "HOSTED_KEY")


def test_a_price_change_appends_to_the_price_history_and_is_audited(large, fiona, login):
    url = reverse("admin:catalog_model_change", args=[large.pk])

    response = login(fiona).post(url, model_form(large, output_price_per_mtok="12.0000000001"))

    assert response.status_code == 302
    history = ModelPrice.objects.get(model=large)
    assert (
        history.input_price_per_mtok,
        history.output_price_per_mtok,
        history.changed_by,
        history.changed_label,
    ) == (Decimal("2.5"), Decimal("12.0000000001"), fiona, "fiona@tollgate.example")
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.before, audit.after) == (
        "catalog.model.update",
        fiona,
        {"output_price_per_mtok": "10.0000000000"},
        {"output_price_per_mtok": "12.0000000001"},
    )


def test_a_change_that_is_not_a_price_adds_no_price_history(large, root, login):
    url = reverse("admin:catalog_model_change", args=[large.pk])

    login(root).post(url, model_form(large, context_window="200000"))

    assert ModelPrice.objects.filter(model=large).count() == 0
    assert AuditEntry.objects.get().after == {"context_window": 200000}


def test_a_deployment_edited_inline_is_audited(large, root, login):
    url = reverse("admin:catalog_model_change", args=[large.pk])

    login(root).post(url, model_form(large, **{"deployments-0-weight": "5"}))

    audit = AuditEntry.objects.get()
    assert (audit.action, audit.before, audit.after) == (
        "catalog.deployment.update",
        {"weight": 1},
        {"weight": 5},
    )


def test_sync_catalog_records_new_and_changed_prices(tmp_path: Path):
    text = """\
default_model: small
providers:
  - {name: local, base_url: "http://127.0.0.1:9/v1", api_key_env: LOCAL_KEY}
models:
  - name: small
    input_price_per_mtok: "0.10"
    output_price_per_mtok: "0.40"
    deployments: [{provider: local, upstream_model: s}]
"""
    sync_catalog(parse_catalog(text))
    sync_catalog(parse_catalog(text))
    sync_catalog(parse_catalog(text.replace('"0.40"', '"0.45"')))

    rows = list(
        ModelPrice.objects.order_by("pk").values_list(
            "input_price_per_mtok", "output_price_per_mtok", "changed_label"
        )
    )
    assert rows == [
        (Decimal("0.10"), Decimal("0.40"), "sync_catalog"),
        (Decimal("0.10"), Decimal("0.45"), "sync_catalog"),
    ]


def test_make_default_moves_the_flag_and_is_audited(large, root, login):
    small = Model.objects.create(name="small", is_default=True)
    url = reverse("admin:catalog_model_changelist")

    login(root).post(url, {"action": "make_default", "_selected_action": [large.pk]})

    assert list(Model.objects.filter(is_default=True).values_list("name", flat=True)) == ["large"]
    small.refresh_from_db()
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.before, audit.after) == (
        "catalog.model.make_default",
        {"default": "small"},
        {"default": "large"},
    )


def test_disable_action_disables_and_audits_each_row_that_changed(large, hosted, root, login):
    other = Deployment.objects.create(
        model=large, provider=hosted, upstream_model="big-2", enabled=False
    )
    url = reverse("admin:catalog_deployment_changelist")
    both = [large.deployments.get(upstream_model="big-1").pk, other.pk]

    login(root).post(url, {"action": "disable_selected", "_selected_action": both})

    assert list(Deployment.objects.filter(enabled=True)) == []
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.target_id, audit.after) == (
        "catalog.deployment.disable",
        str(both[0]),
        {"enabled": False},
    )


def test_finance_may_change_prices_but_not_providers(large, hosted, fiona, sam, login):
    provider_url = reverse("admin:catalog_provider_change", args=[hosted.pk])
    model_url = reverse("admin:catalog_model_change", args=[large.pk])

    finance_provider = login(fiona).post(provider_url, provider_form(timeout_s="5"))
    support_model = login(sam).post(model_url, model_form(large, input_price_per_mtok="0"))

    assert (finance_provider.status_code, support_model.status_code) == (403, 403)
    assert ModelPrice.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_a_plan_limit_change_bumps_the_epoch_of_every_organization_on_it(
    root, login, django_capture_on_commit_callbacks
):
    plan = Plan.objects.create(name="team", rpm=60, tpm=10000, max_concurrent=4)
    other = Plan.objects.create(name="free", rpm=10, tpm=1000, max_concurrent=1)
    on_plan = [
        create_organization(f"Org {n}", owner_email=f"o{n}@x.example", plan=plan) for n in (1, 2)
    ]
    elsewhere = create_organization("Org 3", owner_email="o3@x.example", plan=other)
    url = reverse("admin:limits_plan_change", args=[plan.pk])
    form = {"name": "team", "rpm": "120", "tpm": "10000", "max_concurrent": "4"}

    with django_capture_on_commit_callbacks(execute=True):
        response = login(root).post(url, form)

    assert response.status_code == 302
    epochs = [sync_redis().get(tenant_epoch(org.pk)) for org in [*on_plan, elsewhere]]
    assert epochs == [b"1", b"1", None]
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.before, audit.after) == (
        "limits.plan.update",
        {"rpm": 60},
        {"rpm": 120},
    )


def test_a_plan_rename_bumps_no_epoch(root, login, django_capture_on_commit_callbacks):
    plan = Plan.objects.create(name="team", rpm=60, tpm=10000, max_concurrent=4)
    org = create_organization("Org 1", owner_email="o1@x.example", plan=plan)
    url = reverse("admin:limits_plan_change", args=[plan.pk])
    form = {"name": "team-2024", "rpm": "60", "tpm": "10000", "max_concurrent": "4"}

    with django_capture_on_commit_callbacks(execute=True):
        login(root).post(url, form)

    assert sync_redis().get(tenant_epoch(org.pk)) is None


def test_a_plan_limit_of_zero_is_refused(root, login):
    plan = Plan.objects.create(name="team", rpm=60, tpm=10000, max_concurrent=4)
    url = reverse("admin:limits_plan_change", args=[plan.pk])

    response = login(root).post(
        url, {"name": "team", "rpm": "0", "tpm": "1", "max_concurrent": "1"}
    )

    assert response.status_code == 200
    assert "rpm must be a whole number from 1 to 2147483647" in response.content.decode()
    plan.refresh_from_db()
    assert plan.rpm == 60
