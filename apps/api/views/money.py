"""Money: the balance and the ledger entries behind it."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.pagination import NewestIdFirstPagination
from apps.api.schema import errors
from apps.api.selectors import balance_of, ledger_entries
from apps.api.serializers import BalanceSerializer, LedgerEntrySerializer, LedgerQuerySerializer
from apps.api.views.base import OrgApiView

TAG = "billing"


class BalanceView(OrgApiView):
    """The balance: the sum of the ledger (USD), and what may still be spent."""

    serializer_class = BalanceSerializer
    pagination_class = None

    @extend_schema(
        tags=[TAG],
        operation_id="balance_retrieve",
        responses={200: BalanceSerializer, **errors(404)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        return Response(BalanceSerializer(balance_of(self.access.organization)).data)


class LedgerListView(OrgApiView):
    """Every change of money, the newest first. Entries are never edited or deleted."""

    serializer_class = LedgerEntrySerializer
    pagination_class = NewestIdFirstPagination
    query_serializer_class = LedgerQuerySerializer

    @extend_schema(
        tags=[TAG],
        operation_id="ledger_list",
        parameters=[LedgerQuerySerializer],
        responses={200: LedgerEntrySerializer(many=True), **errors(404, 422)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        page = self.paginate_queryset(ledger_entries(self.access.organization, **self.filters))
        return self.get_paginated_response(LedgerEntrySerializer(page, many=True).data)
