"""Usage: the metered requests, filtered, and their totals."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.pagination import NewestStartedFirstPagination
from apps.api.schema import errors
from apps.api.selectors import usage_groups, usage_totals
from apps.api.serializers import (
    UsageQuerySerializer,
    UsageRecordSerializer,
    UsageSummaryQuerySerializer,
    UsageSummarySerializer,
)
from apps.api.views.base import OrgApiView
from apps.metering.selectors import usage_records

TAG = "usage"


class UsageListView(OrgApiView):
    """One row per finished request, the most recent first."""

    serializer_class = UsageRecordSerializer
    pagination_class = NewestStartedFirstPagination
    query_serializer_class = UsageQuerySerializer

    @extend_schema(
        tags=[TAG],
        operation_id="usage_list",
        parameters=[UsageQuerySerializer],
        responses={200: UsageRecordSerializer(many=True), **errors(404, 422)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        records = usage_records(self.access.organization, **self.filters)
        page = self.paginate_queryset(records)
        return self.get_paginated_response(UsageRecordSerializer(page, many=True).data)


class UsageSummaryView(OrgApiView):
    """Requests, tokens and cost over the filtered rows, optionally per model, key or day."""

    serializer_class = UsageSummarySerializer
    pagination_class = None
    query_serializer_class = UsageSummaryQuerySerializer

    @extend_schema(
        tags=[TAG],
        operation_id="usage_summary",
        parameters=[UsageSummaryQuerySerializer],
        responses={200: UsageSummarySerializer, **errors(404, 422)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        filters = dict(self.filters)
        group_by = filters.pop("group_by", None)
        records = usage_records(self.access.organization, **filters)
        summary = {
            "since": filters.get("since"),
            "until": filters.get("until"),
            "group_by": group_by,
            "totals": usage_totals(records),
            "groups": usage_groups(records, group_by) if group_by else [],
        }
        return Response(UsageSummarySerializer(summary).data)
