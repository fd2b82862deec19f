"""Management tokens: owners list, create (the secret shown once) and revoke them."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.idempotency import idempotent
from apps.api.models import ManagementToken
from apps.api.schema import IDEMPOTENCY_KEY, errors
from apps.api.selectors import management_tokens_of
from apps.api.serializers import (
    ManagementTokenCreatedSerializer,
    ManagementTokenCreateSerializer,
    ManagementTokenSerializer,
)
from apps.api.services import create_management_token, revoke_management_token
from apps.api.views.base import OrgApiView
from apps.tenants.models import Organization, Role

TAG = "management tokens"


class TokenListView(OrgApiView):
    """Owners only (a token never acts as an owner, so tokens cannot mint tokens)."""

    serializer_class = ManagementTokenSerializer
    read_role = Role.OWNER
    write_role = Role.OWNER

    @extend_schema(
        tags=[TAG],
        operation_id="tokens_list",
        responses={200: ManagementTokenSerializer(many=True), **errors(403, 404, 422)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        page = self.paginate_queryset(management_tokens_of(self.access.organization))
        return self.get_paginated_response(ManagementTokenSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        operation_id="tokens_create",
        parameters=[IDEMPOTENCY_KEY],
        request=ManagementTokenCreateSerializer,
        responses={201: ManagementTokenCreatedSerializer, **errors(403, 404, 409, 422)},
    )
    @idempotent(redact=("secret",))
    def post(self, request: Request, org_id: int) -> Response:
        serializer = ManagementTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = create_management_token(
            self.access.organization, created_by=self.access.user, **serializer.validated_data
        )
        data = {**ManagementTokenSerializer(token).data, "secret": secret}
        return Response(data, status=status.HTTP_201_CREATED)


class TokenRevokeView(OrgApiView):
    serializer_class = ManagementTokenSerializer
    read_role = Role.OWNER
    write_role = Role.OWNER

    @extend_schema(
        tags=[TAG],
        operation_id="tokens_revoke",
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={200: ManagementTokenSerializer, **errors(403, 404, 409)},
    )
    @idempotent()
    def post(self, request: Request, org_id: int, token_id: int) -> Response:
        token = revoke_management_token(
            find_token(self.access.organization, token_id), acting_user=self.access.user
        )
        return Response(ManagementTokenSerializer(token).data)


def find_token(organization: Organization, token_id: int) -> ManagementToken:
    """The organization's management token `token_id` (404 for any other)."""
    token = management_tokens_of(organization).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such management token.")
    return token
