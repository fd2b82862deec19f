"""Refunds and event retries for the staff groups: finance may re-apply a failed Stripe event
and sees the refunds of top-ups; support sees the refunds too (docs/admin.md)."""

from django.db import migrations

from apps.audit.migrations._permissions import ensure_permissions

GROUP_PERMISSIONS = {
    "support": ["billing.view_topuprefund"],
    "finance": ["billing.view_topuprefund", "audit.retry_stripe_event"],
}


def _permission(Permission, label):
    app_label, codename = label.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def grant(apps, schema_editor):
    ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, labels in GROUP_PERMISSIONS.items():
        group = Group.objects.get(name=name)
        group.permissions.add(*[_permission(Permission, label) for label in labels])


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, labels in GROUP_PERMISSIONS.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(*[_permission(Permission, label) for label in labels])


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_retry_stripe_event_permission"),
        ("billing", "0003_topup_refunds"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
