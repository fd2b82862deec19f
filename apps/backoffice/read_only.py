"""Admins for records nobody edits by hand: the ledger, usage rows, the audit trail."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Lists and shows rows; no add, change or delete for anyone, superusers included.

    Large tables: ``show_full_result_count`` is off so a filtered list does not count the
    whole table a second time, and filter facets (a count per choice) are never computed.
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice would scan the table

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
