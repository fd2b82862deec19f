"""Staff actions that span domains: each calls the domain's service and appends the audit
entry in the same transaction, so a change and its record exist together or not at all.

(Suspension and credit limits are audited inside apps.tenants.services itself.)
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import record_audit
from apps.billing.invoicing import close_period, due_periods
from apps.keys.models import APIKey
from apps.keys.services import revoke_api_key
from apps.ledger.models import LedgerEntry, ReconciliationIssue
from apps.ledger.reconcile import Mismatch, reconcile_all
from apps.ledger.selectors import cached_balance
from apps.ledger.services import grant_credits
from apps.limits.models import Plan
from apps.limits.selectors import organization_ids_on_plans
from apps.limits.services import bump_tenant_epochs_on_commit, change_plan
from apps.tenants.models import Organization

PLAN_LIMIT_FIELDS = ("rpm", "tpm", "max_concurrent")


@transaction.atomic
def grant_credits_as_staff(
    organization: Organization,
    amount: Decimal,
    *,
    reason: str,
    actor: Any,
    idempotency_key: str,
) -> tuple[LedgerEntry, bool]:
    """Grant (> 0) or deduct (< 0) USD with a ledger entry and an audit entry naming ``actor``.

    Returns (entry, created). A repeated ``idempotency_key`` (a form posted twice) returns the
    first entry and writes nothing. Raises what ``grant_credits`` raises (BelowSpendingFloor,
    IdempotencyConflict, InexactAmount), writing nothing.
    """
    if not reason.strip():
        raise ValueError("A reason is required.")
    before = cached_balance(organization)
    entry, created = grant_credits(
        organization, amount, reason=reason, idempotency_key=idempotency_key, actor=actor
    )
    if created:
        record_audit(
            actor=actor,
            action="ledger.grant_credits" if entry.amount > 0 else "ledger.deduct_credits",
            target=organization,
            before={"balance": before},
            after={
                "balance": cached_balance(organization),
                "amount": entry.amount,
                "kind": entry.kind,
                "ledger_entry": entry.pk,
            },
            reason=reason,
        )
    return entry, created


@transaction.atomic
def change_plan_as_staff(
    organization: Organization, plan: Plan, *, actor: Any, reason: str = ""
) -> bool:
    """Move the organization to ``plan`` (limits apply from the next request); audited.
    Returns False, writing nothing, when it is already on that plan."""
    old_plan_id = (
        Organization.objects.select_for_update()
        .values_list("plan_id", flat=True)
        .get(pk=organization.pk)
    )
    if old_plan_id == plan.pk:
        return False
    change_plan(organization, plan)
    record_audit(
        actor=actor,
        action="tenants.change_plan",
        target=organization,
        before={"plan": old_plan_id},
        after={"plan": plan.pk, "plan_name": plan.name},
        reason=reason,
    )
    organization.plan = plan
    return True


@transaction.atomic
def revoke_key_as_staff(key: APIKey, *, actor: Any, reason: str = "") -> bool:
    """Revoke the key on every worker at once (Redis cut-off on commit); audited.
    Returns False, writing nothing, when it was already revoked."""
    if APIKey.objects.filter(pk=key.pk, revoked_at__isnull=False).exists():
        return False
    revoked = revoke_api_key(key)
    record_audit(
        actor=actor,
        action="keys.revoke",
        target=revoked,
        before={"revoked_at": None},
        after={"revoked_at": revoked.revoked_at, "organization": revoked.organization_id},
        reason=reason,
    )
    return True


@transaction.atomic
def apply_plan_limits(plan: Plan, before: dict[str, Any]) -> list[int]:
    """After a plan's limits were saved: make the gateway reload every organization on it.

    ``before`` holds the old limit values; returns the organizations told (none when no limit
    changed). The epochs move once the transaction commits."""
    if all(before.get(name) == getattr(plan, name) for name in PLAN_LIMIT_FIELDS):
        return []
    org_ids = organization_ids_on_plans([plan.pk])
    bump_tenant_epochs_on_commit(org_ids)
    return org_ids


def run_reconciliation_as_staff(*, actor: Any) -> list[Mismatch]:
    """Run the reconciler over every organization now; the run is audited with its result."""
    found = reconcile_all()
    record_audit(
        actor=actor,
        action="ledger.run_reconciliation",
        target_type="ledger.reconciliationissue",
        target_repr="all organizations",
        after={"mismatches": len(found)},
    )
    return found


@transaction.atomic
def resolve_issue(issue: ReconciliationIssue, *, actor: Any, reason: str = "") -> bool:
    """Mark a reconciliation issue resolved (after the operator dealt with it); audited."""
    updated = ReconciliationIssue.objects.filter(pk=issue.pk, resolved=False).update(resolved=True)
    if not updated:
        return False
    record_audit(
        actor=actor,
        action="ledger.resolve_issue",
        target=issue,
        before={"resolved": False},
        after={"resolved": True},
        reason=reason,
    )
    return True


@transaction.atomic
def close_due_periods_as_staff(organization: Organization, *, actor: Any, reason: str) -> list[Any]:
    """Close the organization's billing periods that are due and not closed yet (what the beat
    task does), e.g. after it failed; audited with what was closed. Closing is idempotent: a
    closed period is never closed twice. Returns the new PeriodClose rows."""
    closed = []
    for start, end in list(due_periods(organization, timezone.now())):
        close, created = close_period(organization, start, end)
        if created:
            closed.append(close)
    record_audit(
        actor=actor,
        action="billing.rerun_close",
        target=organization,
        after={
            "closed": [
                {
                    "period_start": close.period_start,
                    "period_end": close.period_end,
                    "invoice": close.invoice.number if close.invoice_id else None,
                }
                for close in closed
            ]
        },
        reason=reason,
    )
    return closed
