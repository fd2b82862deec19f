"""What the management API reads and writes. Money is a decimal string in USD with 10 decimal
places, never a float; times are ISO 8601 in UTC. Serializers shape and validate input and
output only: every change goes through a service."""

import re
from datetime import UTC, datetime, time
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date
from rest_framework import serializers

from apps.api.models import ManagementToken, TokenRole
from apps.catalog.models import Model
from apps.keys.models import APIKey
from apps.ledger.models import EntryKind, LedgerEntry
from apps.limits.services import MAX_LIMIT
from apps.metering.models import Status, UsageRecord
from apps.tenants.models import Invitation, Membership, Organization, Role

DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_ALLOWED_MODELS = 100


def usd_field(**options: Any) -> serializers.DecimalField:
    """USD as a string with exactly 10 decimal places."""
    return serializers.DecimalField(
        max_digits=30, decimal_places=10, coerce_to_string=True, **options
    )


class InstantField(serializers.DateTimeField):
    """An ISO 8601 date-time, or a date (`2026-01-31`) meaning its midnight UTC."""

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str) and DATE_ONLY.fullmatch(value):
            day = parse_date(value)
            if day is None:
                self.fail("invalid", format="YYYY-MM-DD or ISO 8601")
            return datetime.combine(day, time.min, tzinfo=UTC)
        return super().to_internal_value(value)


def check_range(attrs: dict[str, Any]) -> dict[str, Any]:
    """Refuse a `since` that is not before `until`."""
    since, until = attrs.get("since"), attrs.get("until")
    if since is not None and until is not None and since >= until:
        raise serializers.ValidationError({"until": "Must be after since."})
    return attrs


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)


# --- Organizations -----------------------------------------------------------------------


class OrganizationSerializer(serializers.Serializer):
    """An organization as the caller sees it, with the role they act with."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)
    billing_mode = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    @staticmethod
    def payload(organization: Organization, role: str) -> dict[str, Any]:
        return {
            "id": organization.pk,
            "name": organization.name,
            "role": role,
            "billing_mode": organization.billing_mode,
            "created_at": organization.created_at,
        }


class OrganizationRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, trim_whitespace=True)


# --- API keys ----------------------------------------------------------------------------


class APIKeySerializer(serializers.ModelSerializer):
    """An inference key. The secret is never part of it (see APIKeyCreatedSerializer)."""

    status = serializers.SerializerMethodField()
    created_by = UserSummarySerializer(read_only=True, allow_null=True)
    allowed_models = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = APIKey
        fields = (
            "id",
            "name",
            "prefix",
            "status",
            "created_at",
            "created_by",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "allowed_models",
            "rpm",
            "tpm",
            "max_concurrent",
        )
        read_only_fields = fields

    def get_status(self, key: APIKey) -> str:
        """active, revoked or expired."""
        if key.revoked_at is not None:
            return "revoked"
        return "active" if key.is_active() else "expired"


class APIKeyCreatedSerializer(APIKeySerializer):
    """A new key with its secret: shown in this response only."""

    secret = serializers.CharField(
        read_only=True, allow_null=True, help_text="Shown once; null in an idempotent replay."
    )

    class Meta(APIKeySerializer.Meta):
        fields = (*APIKeySerializer.Meta.fields, "secret")
        read_only_fields = fields


def limit_field(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_LIMIT, help_text=help_text
    )


class APIKeyCreateSerializer(serializers.Serializer):
    """A key to create. Limits may only be lower than the organization's plan."""

    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        max_length=MAX_ALLOWED_MODELS,
        help_text="Public model names; empty or absent means every model.",
    )
    rpm = limit_field("Requests per minute; absent: the plan's.")
    tpm = limit_field("Tokens per minute; absent: the plan's.")
    max_concurrent = limit_field("Requests in flight at once; absent: the plan's.")

    def validate_expires_at(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value

    def validate_allowed_models(self, names: list[str]) -> list[str]:
        unique = list(dict.fromkeys(names))
        known = set(Model.objects.filter(name__in=unique).values_list("name", flat=True))
        for index, name in enumerate(unique):
            if name not in known:
                raise serializers.ValidationError({index: f"Unknown model {name!r}."})
        return unique

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        plan = self.context["organization"].plan
        for name in ("rpm", "tpm", "max_concurrent"):
            value = attrs.get(name)
            if plan is not None and value is not None and value > getattr(plan, name):
                raise serializers.ValidationError(
                    {name: f"May not exceed the plan's limit of {getattr(plan, name)}."}
                )
        return attrs


class KeyQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=("active", "revoked", "expired"), required=False, help_text="Only keys in it."
    )


# --- Members and invitations ---------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    user = UserSummarySerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ("id", "user", "role", "created_at")
        read_only_fields = fields


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation. Its token is never shown: it travels in the email only."""

    status = serializers.CharField(read_only=True, help_text="pending, expired, accepted, revoked")
    invited_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = Invitation
        fields = ("id", "email", "role", "status", "invited_by", "created_at", "expires_at")
        read_only_fields = fields


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200, help_text="The token from the emailed link.")


# --- Usage -----------------------------------------------------------------------------------


class UsageRecordSerializer(serializers.ModelSerializer):
    """One finished request: tokens, prices (USD per million tokens) and cost (USD)."""

    key_id = serializers.IntegerField(read_only=True)
    input_price_per_mtok = usd_field(read_only=True)
    output_price_per_mtok = usd_field(read_only=True)
    cost = usd_field(read_only=True)

    class Meta:
        model = UsageRecord
        fields = (
            "id",
            "request_id",
            "key_id",
            "model",
            "status",
            "stream",
            "prompt_tokens",
            "completion_tokens",
            "input_price_per_mtok",
            "output_price_per_mtok",
            "cost",
            "started_at",
            "finished_at",
            "latency_ms",
            "ttft_ms",
        )
        read_only_fields = fields


class UsageQuerySerializer(serializers.Serializer):
    """Filters of usage: every one given must match. `since` inclusive, `until` exclusive."""

    key = serializers.IntegerField(required=False, min_value=1, help_text="An API key id.")
    model = serializers.CharField(required=False, max_length=128, help_text="A model name.")
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    since = InstantField(required=False, help_text="Started at or after (date or date-time).")
    until = InstantField(required=False, help_text="Started before (date or date-time).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return check_range(attrs)


class UsageSummaryQuerySerializer(UsageQuerySerializer):
    group_by = serializers.ChoiceField(
        choices=("model", "key", "day"),
        required=False,
        help_text="Also break the totals down by model, key id or UTC day.",
    )


class UsageTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = usd_field()


class UsageGroupSerializer(UsageTotalsSerializer):
    group = serializers.CharField(help_text="The model name, key id or UTC date.")


class UsageSummarySerializer(serializers.Serializer):
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    group_by = serializers.CharField(allow_null=True)
    totals = UsageTotalsSerializer()
    groups = UsageGroupSerializer(many=True)


# --- Money -----------------------------------------------------------------------------------


class BalanceSerializer(serializers.Serializer):
    """The balance is the sum of the ledger; `available` is what requests may still spend."""

    currency = serializers.CharField()
    balance = usd_field()
    billing_mode = serializers.CharField()
    credit_limit = usd_field()
    available = usd_field(help_text="balance - spending floor (prepaid: 0; postpaid: -limit).")


class LedgerEntrySerializer(serializers.ModelSerializer):
    amount = usd_field(read_only=True, help_text="USD; negative for a debit.")

    class Meta:
        model = LedgerEntry
        fields = ("id", "amount", "kind", "memo", "actor_label", "created_at")
        read_only_fields = fields


class LedgerQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EntryKind.choices, required=False)
    since = InstantField(required=False, help_text="Posted at or after (date or date-time).")
    until = InstantField(required=False, help_text="Posted before (date or date-time).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return check_range(attrs)


# --- Management tokens ---------------------------------------------------------------------


class ManagementTokenSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="active, revoked or expired")
    created_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = ManagementToken
        fields = (
            "id",
            "name",
            "prefix",
            "role",
            "status",
            "created_at",
            "created_by",
            "last_used_at",
            "expires_at",
            "revoked_at",
        )
        read_only_fields = fields


class ManagementTokenCreatedSerializer(ManagementTokenSerializer):
    secret = serializers.CharField(
        read_only=True, allow_null=True, help_text="Shown once; null in an idempotent replay."
    )

    class Meta(ManagementTokenSerializer.Meta):
        fields = (*ManagementTokenSerializer.Meta.fields, "secret")
        read_only_fields = fields


class ManagementTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=TokenRole.choices, default=TokenRole.ADMIN)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value
