"""Billing records for the staff groups: finance sees every billing record and may resolve
invoice discrepancies; support sees top-ups, invoices and billing profiles (docs/admin.md)."""

from django.db import migrations

from apps.audit.migrations._permissions import ensure_permissions

GROUP_PERMISSIONS = {
    "support": [
        "billing.view_invoice",
        "billing.view_invoiceline",
        "billing.view_topup",
        "billing.view_billingprofile",
    ],
    "finance": [
        "billing.view_invoice",
        "billing.view_invoiceline",
        "billing.view_topup",
        "billing.view_billingprofile",
        "billing.view_stripeevent",
        "billing.view_periodclose",
        "billing.view_creditnote",
        "billing.view_invoicediscrepancy",
        "billing.change_invoicediscrepancy",
        "billing.view_billingchange",
    ],
}


def grant(apps, schema_editor):
    ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, labels in GROUP_PERMISSIONS.items():
        group = Group.objects.get(name=name)
        for label in labels:
            app_label, codename = label.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, labels in GROUP_PERMISSIONS.items():
        codenames = [label.split(".")[1] for label in labels]
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="billing", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_staff_groups"), ("billing", "0001_initial")]

    operations = [migrations.RunPython(grant, revoke)]
