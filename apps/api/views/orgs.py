"""Organizations: the caller's list, one organization, renaming."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.access import token_of
from apps.api.pagination import OldestFirstPagination
from apps.api.schema import errors
from apps.api.selectors import memberships_of
from apps.api.serializers import OrganizationRenameSerializer, OrganizationSerializer
from apps.api.views.base import ApiView, OrgApiView
from apps.tenants.models import Membership
from apps.tenants.permissions import lower_role
from apps.tenants.services import rename_organization

TAG = "organizations"


class OrganizationListView(ApiView):
    """The organizations the caller can act on: a session's memberships, a token's own."""

    serializer_class = OrganizationSerializer
    pagination_class = OldestFirstPagination

    @extend_schema(
        tags=[TAG],
        operation_id="orgs_list",
        responses={200: OrganizationSerializer(many=True), **errors(422)},
    )
    def get(self, request: Request) -> Response:
        token = token_of(request)
        memberships = memberships_of(
            request.user, organization_id=token.organization_id if token else None
        )
        page = self.paginate_queryset(memberships)
        cap = token.role if token else None
        data = [self._payload(membership, cap) for membership in page]
        return self.get_paginated_response(OrganizationSerializer(data, many=True).data)

    @staticmethod
    def _payload(membership: Membership, cap: str | None) -> dict[str, Any]:
        role = lower_role(membership.role, cap)
        return OrganizationSerializer.payload(membership.organization, role)


class OrganizationDetailView(OrgApiView):
    """One organization; owners and admins rename it."""

    serializer_class = OrganizationSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="orgs_retrieve",
        responses={200: OrganizationSerializer, **errors(404)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        return Response(self._data())

    @extend_schema(
        tags=[TAG],
        operation_id="orgs_rename",
        request=OrganizationRenameSerializer,
        responses={200: OrganizationSerializer, **errors(403, 404, 409, 422)},
    )
    def patch(self, request: Request, org_id: int) -> Response:
        serializer = OrganizationRenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rename_organization(
            self.access.organization,
            serializer.validated_data["name"],
            acting_user=self.access.user,
            acting_role=self.access.role,
        )
        return Response(self._data())

    def _data(self) -> dict[str, Any]:
        payload = OrganizationSerializer.payload(self.access.organization, self.access.role)
        return OrganizationSerializer(payload).data
