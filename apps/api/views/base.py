"""The base views every management API endpoint builds on.

They fix the policies in one place, independent of global settings: JSON in and out, a
management token or a session (with CSRF), sign-in required, one error shape, and, for
`/orgs/{org_id}/…`, the organization resolved fail-closed before any handler runs.
"""

from collections.abc import Callable
from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from apps.api.access import OrgAccess, resolve_access, token_of
from apps.api.authentication import ManagementTokenAuthentication
from apps.api.errors import api_exception_handler
from apps.api.pagination import NewestFirstPagination
from apps.tenants.models import Role

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGINATION_PARAMS = ("cursor", "limit")


class ApiView(GenericAPIView):
    """A management API endpoint: its policies set here, not by global settings."""

    authentication_classes = (ManagementTokenAuthentication, SessionAuthentication)
    permission_classes = (IsAuthenticated,)
    renderer_classes = (JSONRenderer,)
    parser_classes = (JSONParser,)
    pagination_class = NewestFirstPagination
    metadata_class = None  # OPTIONS: 405; the OpenAPI schema describes every endpoint
    # True for actions of a person (leave, accept an invitation): tokens get 403.
    session_only: ClassVar[bool] = False
    # Validates the query string of GET; unknown parameters are refused.
    query_serializer_class: ClassVar[type[serializers.Serializer] | None] = None

    # The validated query parameters of a GET.
    filters: dict[str, Any]

    def get_exception_handler(self) -> Callable[..., Any]:
        return api_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self.session_only and token_of(request) is not None:
            raise PermissionDenied(
                "Management tokens cannot do this: sign in as the person it concerns.",
                code="session_required",
            )
        self.authorize(request, **kwargs)
        self.filters = self.query() if request.method in ("GET", "HEAD") else {}

    def authorize(self, request: Request, **kwargs: Any) -> None:
        """Check the caller may use this endpoint (after sign-in, before the query string)."""

    def query(self) -> dict[str, Any]:
        """The validated query parameters (422 naming the first bad or unknown one)."""
        serializer_class = self.query_serializer_class
        allowed = set(PAGINATION_PARAMS)
        if serializer_class is not None:
            allowed |= set(serializer_class().fields)
        unknown = sorted(set(self.request.query_params) - allowed)
        if unknown:
            raise ValidationError({unknown[0]: "Unknown query parameter."})
        if serializer_class is None:
            return {}
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class OrgApiView(ApiView):
    """An endpoint under `/orgs/{org_id}/`: `self.access` is the caller's standing there.

    Non-members (and tokens of other organizations) get 404 before anything else; then reads
    need `read_role` and writes `write_role` (403 otherwise). Handlers check stricter rules
    through the services they call.
    """

    read_role: ClassVar[str] = Role.MEMBER
    write_role: ClassVar[str] = Role.ADMIN
    access: OrgAccess

    def authorize(self, request: Request, **kwargs: Any) -> None:
        self.access = resolve_access(request, kwargs["org_id"])
        minimum = self.read_role if request.method in SAFE_METHODS else self.write_role
        self.access.require(minimum)
