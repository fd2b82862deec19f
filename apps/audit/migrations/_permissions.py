"""Shared by the group migrations: permissions are normally created after all migrations ran
(post_migrate); a migration that grants them needs them to exist already."""

from django.contrib.auth.management import create_permissions


def ensure_permissions(apps):
    """Create the content types and permissions of every model known to ``apps`` (idempotent)."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
