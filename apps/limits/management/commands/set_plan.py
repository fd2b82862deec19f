"""``manage.py set_plan ORG PLAN``: move an organization to another rate-limit plan."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.limits.models import Plan
from apps.limits.selectors import plan_by_name
from apps.limits.services import change_plan
from apps.tenants.models import Organization
from apps.tenants.selectors import find_organization


class Command(BaseCommand):
    help = (
        "Put ORG (id or exact name) on PLAN (name). Every gateway worker applies the new "
        "limits at its next request. The last line printed is the plan name."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("org", help="Organization id or exact name.")
        parser.add_argument("plan", help="Plan name.")

    def handle(self, *args: Any, org: str, plan: str, **options: Any) -> None:
        try:
            organization = find_organization(org)
        except Organization.DoesNotExist:
            raise CommandError(f"No organization {org!r}.") from None
        try:
            new_plan = plan_by_name(plan)
        except Plan.DoesNotExist:
            raise CommandError(f"No plan named {plan!r}.") from None
        organization = change_plan(organization, new_plan)
        self.stderr.write(f"{organization.name} is on {new_plan}")
        self.stdout.write(new_plan.name)
