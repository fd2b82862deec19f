"""Reads of organizations."""

from apps.tenants.models import Organization


def find_organization(reference: str) -> Organization:
    """An organization by numeric id or exact name; raises Organization.DoesNotExist."""
    if reference.isdigit():
        found = Organization.objects.filter(pk=int(reference)).first()
        if found is not None:
            return found
    return Organization.objects.get(name=reference)
