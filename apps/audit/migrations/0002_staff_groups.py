"""The staff groups "support" and "finance" with their permissions (docs/admin.md).

The lists are frozen here; later changes come as new migrations. Superusers need no group.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_ALL = [
    "tenants.view_organization",
    "tenants.view_membership",
    "keys.view_apikey",
    "limits.view_plan",
    "catalog.view_provider",
    "catalog.view_model",
    "catalog.view_deployment",
    "catalog.view_modelprice",
    "metering.view_usagerecord",
    "ledger.view_ledgerentry",
    "ledger.view_balance",
    "ledger.view_reconciliationissue",
    "audit.view_auditentry",
    "audit.view_overview",
]

GROUP_PERMISSIONS = {
    "support": [
        *VIEW_ALL,
        "tenants.change_organization",
        "audit.suspend_organization",
        "audit.revoke_api_key",
        "audit.change_organization_plan",
    ],
    "finance": [
        *VIEW_ALL,
        "ledger.change_reconciliationissue",
        "catalog.change_model",
        "audit.grant_credits",
        "audit.refund_payment",
        "audit.rerun_billing_close",
        "audit.run_reconciliation",
        "audit.change_credit_limit",
        "audit.change_organization_plan",
    ],
}


def ensure_permissions(apps):
    """Permissions are normally created after all migrations; this migration needs them now."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def create_groups(apps, schema_editor):
    ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, labels in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for label in labels:
            app_label, codename = label.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUP_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tenants", "0002_organization_billing_mode_organization_credit_limit_and_more"),
        ("keys", "0002_apikey_max_concurrent_apikey_rpm_apikey_tpm"),
        ("limits", "0001_initial"),
        ("catalog", "0003_initial_prices"),
        ("metering", "0001_initial"),
        ("ledger", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
