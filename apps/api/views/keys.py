"""Inference API keys: list, create (the secret shown once), read, revoke."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.idempotency import idempotent
from apps.api.schema import IDEMPOTENCY_KEY, errors
from apps.api.selectors import keys_of
from apps.api.serializers import (
    APIKeyCreatedSerializer,
    APIKeyCreateSerializer,
    APIKeySerializer,
    KeyQuerySerializer,
)
from apps.api.views.base import OrgApiView
from apps.keys.models import APIKey
from apps.keys.services import create_api_key, revoke_api_key
from apps.tenants.models import Organization

TAG = "keys"


class KeyListView(OrgApiView):
    """Members list keys; owners and admins create them."""

    serializer_class = APIKeySerializer
    query_serializer_class = KeyQuerySerializer

    @extend_schema(
        tags=[TAG],
        operation_id="keys_list",
        parameters=[KeyQuerySerializer],
        responses={200: APIKeySerializer(many=True), **errors(404, 422)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        keys = keys_of(self.access.organization, status=self.filters.get("status"))
        page = self.paginate_queryset(keys)
        return self.get_paginated_response(APIKeySerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        operation_id="keys_create",
        parameters=[IDEMPOTENCY_KEY],
        request=APIKeyCreateSerializer,
        responses={201: APIKeyCreatedSerializer, **errors(403, 404, 409, 422)},
    )
    @idempotent(redact=("secret",))
    def post(self, request: Request, org_id: int) -> Response:
        organization = self.access.organization
        serializer = APIKeyCreateSerializer(
            data=request.data, context={"organization": organization}
        )
        serializer.is_valid(raise_exception=True)
        key, secret = create_api_key(
            organization, created_by=self.access.user, **serializer.validated_data
        )
        data = {**APIKeySerializer(key).data, "secret": secret}
        return Response(data, status=status.HTTP_201_CREATED)


class KeyDetailView(OrgApiView):
    serializer_class = APIKeySerializer

    @extend_schema(
        tags=[TAG], operation_id="keys_retrieve", responses={200: APIKeySerializer, **errors(404)}
    )
    def get(self, request: Request, org_id: int, key_id: int) -> Response:
        return Response(APIKeySerializer(find_key(self.access.organization, key_id)).data)


class KeyRevokeView(OrgApiView):
    """Owners and admins revoke a key: refused by the gateway from the next request."""

    serializer_class = APIKeySerializer

    @extend_schema(
        tags=[TAG],
        operation_id="keys_revoke",
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={200: APIKeySerializer, **errors(403, 404, 409)},
    )
    @idempotent()
    def post(self, request: Request, org_id: int, key_id: int) -> Response:
        key = revoke_api_key(find_key(self.access.organization, key_id))
        return Response(APIKeySerializer(key).data)


def find_key(organization: Organization, key_id: int) -> APIKey:
    """The organization's key `key_id` (404 for any other)."""
    key = keys_of(organization).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key
