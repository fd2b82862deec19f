from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.limits.models import Plan
from apps.limits.selectors import plan_by_name
from apps.tenants.models import Organization
from apps.tenants.services import create_organization


class Command(BaseCommand):
    help = (
        "Create an organization with an owner, on --plan or else the default plan. "
        "The last line printed is the org id."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="Owner's email (created if new).")
        parser.add_argument("--plan", help="Plan name (default: the default plan, if any).")

    def handle(self, *args: Any, **options: Any) -> None:
        if Organization.objects.filter(name=options["name"]).exists():
            raise CommandError(f"An organization named {options['name']!r} already exists.")
        plan = _plan(options["plan"])
        organization = create_organization(options["name"], owner_email=options["owner"], plan=plan)
        plan_name = organization.plan.name if organization.plan else "no plan"
        self.stderr.write(f"created {organization.name} on {plan_name}")
        self.stdout.write(str(organization.pk))


def _plan(name: str | None) -> Plan | None:
    """The named plan (CommandError if there is none), or None for the default."""
    if name is None:
        return None
    try:
        return plan_by_name(name)
    except Plan.DoesNotExist:
        raise CommandError(f"No plan named {name!r}.") from None
