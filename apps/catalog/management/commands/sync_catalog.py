"""``manage.py sync_catalog PATH [--dry-run]``: apply a catalog file (docs/catalog.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.catalog.catalog_file import CatalogError, load_catalog_file
from apps.catalog.services import KindReport, SyncReport, sync_catalog


class Command(BaseCommand):
    help = (
        "Load providers, models and plans from a YAML catalog file in one transaction. Prints "
        "a summary; the last line is 'changed' or 'unchanged'. An invalid file writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the catalog YAML file")
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and report, but write nothing"
        )

    def handle(self, *args: Any, path: str, dry_run: bool, **options: Any) -> None:
        try:
            spec = load_catalog_file(path)
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        report = sync_catalog(spec, dry_run=dry_run)
        for line in summary_lines(report):
            self.stdout.write(line)
        self.stdout.write("changed" if report.changed else "unchanged")


def summary_lines(report: SyncReport) -> Iterator[str]:
    """Human lines describing ``report``; never includes secrets (only field names)."""
    kinds = (
        ("providers", report.providers),
        ("models", report.models),
        ("deployments", report.deployments),
        ("plans", report.plans),
    )
    for kind, changes in kinds:
        yield from _kind_lines(kind, changes)
    if not report.changed:
        yield "catalog already up to date"
    yield f"default model: {report.default_model}"
    if report.default_plan is not None:
        yield f"default plan: {report.default_plan}"
    if report.dry_run:
        yield "dry run: nothing was written"


def _kind_lines(kind: str, changes: KindReport) -> Iterator[str]:
    for name in changes.created:
        yield f"{kind}: created {name}"
    for name, fields in changes.updated.items():
        yield f"{kind}: updated {name} ({', '.join(fields)})"
    for name in changes.disabled:
        yield f"{kind}: disabled {name}"
    for name in changes.kept:
        yield f"{kind}: kept {name} (not in the file; left in place)"
