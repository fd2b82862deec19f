"""Management API shapes of billing. Money is a decimal string in USD (exact), never a float."""

from decimal import Decimal

from rest_framework import serializers

from apps.billing.models import Invoice, InvoiceLine, TopUp

USD_FIELD = {"max_digits": 20, "decimal_places": 10, "coerce_to_string": True}


class TopUpSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(**USD_FIELD, read_only=True)

    class Meta:
        model = TopUp
        fields = ["id", "source", "status", "amount", "currency", "created_at", "paid_at"]
        read_only_fields = fields


class CreateTopUpSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    save_card = serializers.BooleanField(default=False)


class InvoiceLineSerializer(serializers.ModelSerializer):
    input_price_per_mtok = serializers.DecimalField(**USD_FIELD)
    output_price_per_mtok = serializers.DecimalField(**USD_FIELD)
    amount = serializers.DecimalField(**USD_FIELD)

    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "model",
            "requests",
            "input_tokens",
            "output_tokens",
            "input_price_per_mtok",
            "output_price_per_mtok",
            "amount",
            "amount_cents",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    total = serializers.DecimalField(**USD_FIELD)
    topups_total = serializers.DecimalField(**USD_FIELD)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "kind",
            "period_start",
            "period_end",
            "issued_at",
            "currency",
            "total",
            "total_cents",
            "request_count",
            "topups_total",
            "stripe_status",
            "paid_at",
        ]
        read_only_fields = fields


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines"]
        read_only_fields = fields
