"""The ledger in the admin: entries are read-only (a mistake is undone by a new entry, posted
from an organization's page), and the reconciliation report with a "run now" button."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from apps.accounts.models import User
from apps.audit.audited_admin import has_operator_permission, require_operator_permission
from apps.backoffice.list_filters import OrganizationFilter
from apps.backoffice.read_only import ReadOnlyModelAdmin
from apps.backoffice.services import resolve_issue, run_reconciliation_as_staff
from apps.ledger.models import LedgerEntry, ReconciliationIssue
from apps.tenants.models import Organization

MEMO_SHOWN = 80


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyModelAdmin):
    list_display = (
        "created_at",
        "organization",
        "kind",
        "amount",
        "actor_label",
        "short_memo",
        "idempotency_key",
    )
    list_select_related = ("organization",)
    list_filter = (OrganizationFilter, "kind", "created_at")
    search_fields = ("idempotency_key",)  # see get_search_results
    search_help_text = (
        "Exact idempotency key (usage:<request id> finds a request's debit), "
        "exact staff email or exact organization name."
    )
    # Newest first by id: an index scan, where ordering by time would sort the whole table.
    ordering = ("-pk",)
    fields = (
        "organization",
        "amount",
        "kind",
        "idempotency_key",
        "actor",
        "actor_label",
        "memo",
        "created_at",
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Exact matches only, each through an index: the idempotency key's unique index, or
        the organization's or the staff user's id resolved first."""
        term = search_term.strip()
        if not term:
            return queryset, False
        org_ids = Organization.objects.filter(name=term).values_list("pk", flat=True)
        user_ids = User.objects.filter(email=term.lower()).values_list("pk", flat=True)
        matches = (
            Q(idempotency_key=term)
            | Q(organization_id__in=list(org_ids))
            | Q(actor_id__in=list(user_ids))
        )
        return queryset.filter(matches), False

    @admin.display(description="memo")
    def short_memo(self, entry: LedgerEntry) -> str:
        memo = entry.memo
        return memo if len(memo) <= MEMO_SHOWN else f"{memo[: MEMO_SHOWN - 1]}…"


@admin.register(ReconciliationIssue)
class ReconciliationIssueAdmin(ReadOnlyModelAdmin):
    """The reconciliation report: every mismatch the reconciler found, open ones first."""

    list_display = (
        "organization",
        "kind",
        "expected",
        "actual",
        "difference",
        "times_seen",
        "detected_at",
        "last_seen_at",
        "resolved",
    )
    list_select_related = ("organization",)
    list_filter = ("resolved", "kind")
    search_fields = ("organization__name",)
    ordering = ("resolved", "-last_seen_at", "-pk")
    actions = ("resolve_selected",)
    change_list_template = "admin/ledger/reconciliationissue/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(diff=F("actual") - F("expected"))

    @admin.display(description="actual - expected", ordering="diff")
    def difference(self, issue: ReconciliationIssue) -> Any:
        return issue.diff  # type: ignore[attr-defined]

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ledger.change_reconciliationissue")

    @admin.action(description="Mark selected issues resolved", permissions=["resolve"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = [issue for issue in queryset if resolve_issue(issue, actor=request.user)]
        self.message_user(request, f"Resolved {len(done)} issue(s).")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            **(extra_context or {}),
            "can_run_reconciliation": has_operator_permission(request, "run_reconciliation"),
        }
        return super().changelist_view(request, context)

    def get_urls(self) -> list[URLPattern]:
        run = self.admin_site.admin_view(self.run_view)
        return [
            path("run/", run, name="ledger_reconciliationissue_run"),
            *super().get_urls(),
        ]

    def run_view(self, request: HttpRequest) -> HttpResponse:
        """POST: reconcile every organization now (what the beat task does every 5 minutes)."""
        require_operator_permission(request, "run_reconciliation")
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        found = run_reconciliation_as_staff(actor=request.user)
        level = messages.WARNING if found else messages.SUCCESS
        self.message_user(request, f"Reconciliation finished: {len(found)} mismatch(es).", level)
        return HttpResponseRedirect(reverse("admin:ledger_reconciliationissue_changelist"))
