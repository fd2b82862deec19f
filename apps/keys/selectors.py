"""Reads of API keys."""

from django.db.models import Q

from apps.keys.models import APIKey


def find_key(reference: str) -> APIKey:
    """A key by numeric id or by its visible prefix; raises APIKey.DoesNotExist."""
    query = Q(prefix=reference)
    if reference.isdigit():
        query |= Q(pk=int(reference))
    matches = list(APIKey.objects.select_related("organization").filter(query)[:2])
    if len(matches) != 1:
        raise APIKey.DoesNotExist(f"no single API key matches {reference!r}")
    return matches[0]


def key_by_hash(hashed_secret: str) -> APIKey | None:
    return (
        APIKey.objects.select_related("organization__plan")
        .filter(hashed_secret=hashed_secret)
        .first()
    )
