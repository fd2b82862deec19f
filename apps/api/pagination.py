"""Cursor pagination for every list: stable under inserts, no counting, `?limit=` validated.

A list answers `{"next": url | null, "previous": url | null, "results": [...]}`; follow `next`
until it is null. A malformed `cursor` or `limit` is a 422 naming the parameter.
"""

import binascii
from base64 import b64decode

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class NewestFirstPagination(CursorPagination):
    """Newest first by `created_at`, ties broken by id."""

    ordering = ("-created_at", "-id")
    page_size = PAGE_SIZE
    max_page_size = MAX_PAGE_SIZE
    page_size_query_param = "limit"
    page_size_query_description = f"Items per page, 1 to {MAX_PAGE_SIZE} (default {PAGE_SIZE})."
    template = None

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: APIView | None = None
    ) -> list | None:
        try:
            return super().paginate_queryset(queryset, request, view)
        except (NotFound, DjangoValidationError):  # a cursor that was not one of ours
            raise ValidationError({"cursor": "Invalid cursor."}) from None

    def decode_cursor(self, request: Request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None:
            try:  # DRF's decoding skips stray characters; a cursor we made has none
                b64decode(encoded.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise NotFound from None
        return super().decode_cursor(request)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"limit": f"Use a whole number from 1 to {self.max_page_size}."})
        return int(raw)


class OldestFirstPagination(NewestFirstPagination):
    """Oldest first by `created_at` (members, in the order they joined)."""

    ordering = ("created_at", "id")


class NewestStartedFirstPagination(NewestFirstPagination):
    """Usage records: the most recently started request first."""

    ordering = ("-started_at", "-id")


class NewestIdFirstPagination(NewestFirstPagination):
    """Ledger entries, by id: the entries of one ingest batch share one `created_at` (thousands
    of rows), more than a cursor's offset can step over; ids are unique and grow with time."""

    ordering = ("-id",)
